"""The data the model learns from: frame collections, VoxCeleb readers, SynthVox, video preparation."""
