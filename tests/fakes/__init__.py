"""Test doubles that run as real local servers (see README.md beside this file)."""
