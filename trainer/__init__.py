"""antifit's training worker: fine-tunes a Hugging Face model on streamed augmented batches with
the regularizers practitioners use against overfitting."""
