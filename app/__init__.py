"""Cross-Entropy Explainer: every stage of nn.CrossEntropyLoss, computed and shown."""
