"""Provided code for Homework 4 (ungraded): the course's ResNet-20, data, training utilities.

- ``hw4.resnet``: ``ResNetCIFAR``, ``FP_Conv``, ``FP_Linear``, ``prunable_layers``, ``load_pretrained``
- ``hw4.data``: ``load_dataset``, ``train_loader``, ``test_loader``
- ``hw4.training``: ``course_optimizer``, ``course_criterion``, ``train_epoch``, ``evaluate``
- ``hw4.lab1_runner``: Lab 1 trajectories and plots
"""
