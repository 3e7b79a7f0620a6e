"""Problem 1: True/False (10 x 2 points).

Replace each None with True or False (the Python booleans, not strings). The statements are
in the handout, section 1.
"""

TRUE_FALSE = {
    "1.1": None,
    "1.2": None,
    "1.3": None,
    "1.4": None,
    "1.5": None,
    "1.6": None,
    "1.7": None,
    "1.8": None,
    "1.9": None,
    "1.10": None,
}
