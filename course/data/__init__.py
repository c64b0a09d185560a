"""The digits data shipped with the package (read by course.dataset; licence in README.md)."""
