"""antifit's augmentation service (FastAPI): datasets, augmentation jobs, batch streams."""
