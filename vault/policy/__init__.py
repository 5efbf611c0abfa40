"""Access control: the Cedar policies, the entity slices they read, and the one enforcement
point."""
