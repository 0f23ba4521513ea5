"""The training engine: pretrain, fine-tune / linear-probe and evaluate loops, checkpoints with resume,
device selection and the time / frequency-domain input representation."""
