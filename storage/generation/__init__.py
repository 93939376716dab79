"""Generation tables beyond the jobs: the provider capacity shared by worker processes."""
