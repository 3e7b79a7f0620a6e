"""Autograder for Homework 4: Pruning and Fixed-point Quantization.

Stages (one module each): intake -> sandbox -> judge -> report. See docs/DESIGN.md.
"""
