"""Driver tests against real protocol servers."""
