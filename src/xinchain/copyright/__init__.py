"""Copyright for sellers' photos: perceptual hashes, the near-duplicate index, evidence."""
