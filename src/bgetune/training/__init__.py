"""Training: batches without duplicate texts, the InfoNCE loss, and a loop you can read top to bottom."""
