"""Running the pipeline, evaluation and training on Ray (issue 23); the top wing, it may import any other.

    session.py    connect to a Ray cluster (an address, RAY_ADDRESS) or start a local one for a run
    results.py    the output folder of a batch: CSV and JSONL rows written once each, resumable
    ray_batch.py  `predict --ray`: Ray Data reads the inputs, an actor pool holds detector and models
    ray_evaluate.py  `evaluate --detect-faces --ray`: the face detection on an actor pool
    ray_video.py  `video A B ... --ray`: many videos at once, one actor call each
    ray_train.py  data-parallel training with Ray Train's TorchTrainer (DDP, gloo on CPU)
    ray_entry.py  what a Ray job of core.jobs.ray_runner.RayRunner runs: one job, trained and registered
    cli.py        the --ray options of predict, evaluate and video, and the commands that run them

The job backend itself, RayRunner (FER_STUDIO_JOBS=ray), lives in the jobs wing (core/jobs/ray_runner.py):
get_runner picks it, and a wing may not import one above it.

Ray is optional (requirements-ray.txt): only these modules and core/jobs/ray_runner.py use it, and they
import it only inside functions, so importing them works without Ray installed.
"""

DEFAULT_BATCH_SIZE = 8  # files per actor call: small enough to spread a few hundred files over the actors
