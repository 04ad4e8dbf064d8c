"""`daegan evaluate`: reenactment quality and disentanglement of a trained model (paper sec. 4; issue 6).

- `settings`: what is measured and how much (the only home of the evaluation's numbers);
- `frames`: a collection read for evaluation (labelled SynthVox or real frames);
- `similarity` (SSIM, L1), `fid` (Inception network, Fréchet distance), `landmarks` (dlib: head pose, openness,
  AKD, CSIM): the measuring instruments;
- `protocol` (the paper's 50 x 32 protocol), `cross_identity`, `expression` (mouth and eye regions),
  `disentanglement` (retrieval, leakage, probes): the analyses; `evaluate` runs them for one model;
- `provenance`: each collection held out or seen in training, by the checkpoint's training record; `summary`: the
  held-out collections' headline figures beside their targets;
- `results`: what the analyses found, typed; `metrics_file`: metrics.json as one typed document;
- `picture_pass` (what each picture shows; `pictures` draws them) and `report` show them; `run` goes from files to
  a report folder.
"""
