"""MNIST classifiers from scratch: tensor operations only, manual backprop, an own training loop."""
