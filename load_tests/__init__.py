"""Headless locust load tests of the wine-quality service: user classes, defaults and a runner."""
