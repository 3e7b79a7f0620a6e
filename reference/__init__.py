"""Staff solutions of Homework 4, with the same names and signatures as the stubs in ``student/``.

Never shipped in the student handout and never importable by a student's process: fixtures are
generated from it (``python -m autograder fixtures``) and hidden tests may import it in the
trusted process only. ``answers.py`` holds the instructor's True/False key.
"""
