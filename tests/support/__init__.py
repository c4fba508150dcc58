"""Helpers shared by test modules of several tiers: plain functions, never fixtures or tests.

Fixtures live in ``conftest.py`` files (``tests/conftest.py`` for every tier, one per tier
folder below it); a test module never imports from another test module.

``builders``   requests and actors made the way the decorator makes them
``git``        the one ``git`` runner for tests (work trees and bare repositories)
``golden``     the one golden-file check (``HITL_REGEN_GOLDEN=1`` rewrites)
``processes``  what a Python child process needs to import this checkout's ``tests`` package
"""
