"""Test helpers shared by the test modules (which never import each other):
record factories, a fake engine, fakes of Discord's API, worker processes."""
