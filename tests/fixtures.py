"""Test fixtures (not installed): small learnable clips in the preprocessed TFRecord format, and a
random model batch, for the tests and the benchmarks.

Each clip: a coloured square on a plain background moving in a class-specific direction;
keypoints are the square's corners-ish points, velocity their per-frame deltas / VELOCITY_SCALE;
the landmarks are the keypoints themselves (L = k).
"""

import os

import numpy as np

from amc_tf.data import features


def make_clips(num_clips, num_classes, num_keypoints, seed=0, num_frames=features.NUM_FRAMES,
               size=features.FRAME_SIZE, num_subjects=4):
    """Numpy clips: dict video uint8 (N,T,S,S,3), keypoints (N,T,2k), landmarks (N,T,2k),
    velocity (N,T-1,2k), motion_class (N,), subject (N,) bytes, clip_id (N,) bytes."""
    rng = np.random.default_rng(seed)
    angles = 2 * np.pi * np.arange(num_classes) / num_classes
    videos = np.zeros((num_clips, num_frames, size, size, 3), np.uint8)
    keypoints = np.zeros((num_clips, num_frames, 2 * num_keypoints), np.float32)
    classes = np.arange(num_clips) % num_classes
    rng.shuffle(classes)
    subjects = rng.integers(0, num_subjects, num_clips)
    half = size // 8
    offsets = rng.uniform(-half, half, (num_keypoints, 2))
    for n in range(num_clips):
        bg = rng.integers(0, 80, 3)
        colour = rng.integers(140, 256, 3)
        speed = size * 0.35 / num_frames
        direction = np.array([np.cos(angles[classes[n]]), np.sin(angles[classes[n]])])
        for t in range(num_frames):
            centre = size / 2 + direction * speed * t
            frame = np.empty((size, size, 3), np.uint8)
            frame[:] = bg
            x0, y0 = (centre - half).astype(int)
            frame[max(y0, 0):max(y0 + 2 * half, 0), max(x0, 0):max(x0 + 2 * half, 0)] = colour
            videos[n, t] = frame
            keypoints[n, t] = (centre[None, :] + offsets).reshape(-1)
    velocity = np.clip(np.diff(keypoints, axis=1) / features.VELOCITY_SCALE, -1, 1)
    return {
        features.VIDEO: videos, features.KEYPOINTS: keypoints,
        features.LANDMARKS: keypoints.copy(),
        features.VELOCITY: velocity.astype(np.float32),
        features.MOTION_CLASS: classes.astype(np.int64),
        features.SUBJECT: np.array([f"s{s}".encode() for s in subjects]),
        features.CLIP_ID: np.array([f"c{n}".encode() for n in range(num_clips)]),
    }


def write_clips(directory, num_clips, num_classes, num_keypoints, seed=0, split="train",
                **kwargs):
    """Writes clips to DIR/Split-<split>/clips.gz (the preprocess output layout); the pattern."""
    import tensorflow as tf
    clips = make_clips(num_clips, num_classes, num_keypoints, seed=seed, **kwargs)
    out_dir = os.path.join(directory, f"Split-{split}")
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "clips.gz")
    feat = lambda **kw: tf.train.Feature(**kw)
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
        for n in range(num_clips):
            ex = tf.train.Example(features=tf.train.Features(feature={
                features.VIDEO: feat(bytes_list=tf.train.BytesList(
                    value=[clips[features.VIDEO][n].tobytes()])),
                features.KEYPOINTS: feat(float_list=tf.train.FloatList(
                    value=clips[features.KEYPOINTS][n].reshape(-1))),
                features.LANDMARKS: feat(float_list=tf.train.FloatList(
                    value=clips[features.LANDMARKS][n].reshape(-1))),
                features.VELOCITY: feat(float_list=tf.train.FloatList(
                    value=clips[features.VELOCITY][n].reshape(-1))),
                features.MOTION_CLASS: feat(int64_list=tf.train.Int64List(
                    value=[clips[features.MOTION_CLASS][n]])),
                features.SUBJECT: feat(bytes_list=tf.train.BytesList(
                    value=[clips[features.SUBJECT][n]])),
                features.CLIP_ID: feat(bytes_list=tf.train.BytesList(
                    value=[clips[features.CLIP_ID][n]])),
            }))
            writer.write(ex.SerializeToString())
    return os.path.join(out_dir, "*.gz")


def write_summary(directory, num_classes, dataset="gestures"):
    """DIR/summary.json as ExampleGen / `amc-tf preprocess` write it: the Trainers and
    `amc-tf train` read the dataset style and the class names there."""
    import json
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "summary.json"), "w") as f:
        json.dump({"dataset": dataset,
                   "class_names": [f"class_{i}" for i in range(num_classes)]}, f)


def write_natops_named_gestures(raw, clips, seed, num_classes):
    """A synthetic gestures raw set (amc_tf.data.synthetic) whose classes.txt and annotations
    name its own labels ("natops_<name>"), as real NATOPS exports do: a served model must carry
    these names, not the built-in ones. Returns `raw`."""
    import json
    import pathlib

    from amc_tf.data import synthetic
    synthetic.write_gestures(str(raw), clips=clips, seed=seed, num_classes=num_classes)
    raw = pathlib.Path(raw)
    names = (raw / "classes.txt").read_text().split()
    (raw / "classes.txt").write_text("".join(f"natops_{n}\n" for n in names))
    for path in raw.glob("*/*.json"):
        annotation = json.loads(path.read_text())
        annotation["label"] = "natops_" + annotation["label"]
        path.write_text(json.dumps(annotation))
    return str(raw)


def random_model_batch(config, batch_size, seed=0):
    """A batch as AMCGAN.train_step takes it (prepared, float in [-1, 1]), of uniform noise
    videos and velocities: for shape tests, gradient checks and benchmarks."""
    import tensorflow as tf
    rng = np.random.default_rng(seed)
    c = config
    return {
        "video": tf.constant(rng.uniform(-1, 1, (batch_size, c.num_frames, c.frame_size,
                                                 c.frame_size, 3)).astype(np.float32)),
        "velocity": tf.constant(rng.uniform(-1, 1, (batch_size, c.num_frames - 1,
                                                    c.velocity_dim)).astype(np.float32)),
        "motion_class": tf.constant(np.arange(batch_size) % c.num_classes, tf.int32),
        "subject_id": tf.constant(np.arange(batch_size), tf.int64),
        "noise": tf.constant(rng.standard_normal((batch_size, c.noise_dim)).astype(np.float32)),
    }


def check_network_hyper_parameters(network, args, output_ok):
    """Keras-layer style, for every family's networks: named constructor arguments, get_config()
    is exactly them (plus keras.Model's name / trainable / dtype), and from_config rebuilds the
    same network (what a .keras file holds)."""
    import inspect
    import json
    net = network(**args)
    assert output_ok(net(net.dummy_inputs()))
    config = net.get_config()
    assert {k: v for k, v in config.items() if k not in ("name", "trainable", "dtype")} == args
    named = [p for p in inspect.signature(network.__init__).parameters
             if p not in ("self", "kwargs")]
    assert set(named) == set(args)
    stored = json.loads(json.dumps(config))
    assert network.from_config(stored).get_config() == config


def train_and_resume(family, directory, capsys):
    """`train.train_model` of `family` at the test preset: 10 steps (checkpoints, the saved
    generator, TensorBoard scalars and videos, config.json), then the same command for 15 steps
    resumes at step 10. Returns (the resumed model, its config) for the family's own checks."""
    from amc_tf.training import train
    c = family.config("test", num_classes=4)
    pattern = write_clips(os.path.join(directory, "data"), 8, 4, c.num_keypoints, seed=0)
    evals = write_clips(os.path.join(directory, "data"), 4, 4, c.num_keypoints, seed=1,
                        split="eval")
    out = os.path.join(directory, "out")
    train.train_model(family, c, pattern, evals, out, steps=10, verbose=0)
    assert sorted(os.listdir(os.path.join(out, "checkpoints")))[0] == "checkpoint"
    assert os.path.exists(os.path.join(out, family.generator_file()))
    assert os.listdir(os.path.join(out, "logs", "videos"))             # TensorBoard videos
    assert os.listdir(os.path.join(out, "logs", "train"))              # TensorBoard scalars
    model = train.train_model(family, c, pattern, evals, out, steps=15, verbose=0)
    assert "resumed from step 10" in capsys.readouterr().out
    with open(os.path.join(out, "config.json")) as f:
        assert family.config_from_json(f.read()) == c
    return model, c


def export_test_model(family, export_dir, num_classes=3):
    """An untrained `family` model at the test preset (seeded), exported with an untrained B.3
    classifier to `export_dir` (classes "a", "b", ...). Returns (metadata, config)."""
    import tensorflow as tf

    from amc_tf.models.classifier import build_classifier
    from serving import export
    c = family.config("test", num_classes=num_classes)
    tf.keras.utils.set_random_seed(0)
    model = family.build(c)
    classifier = build_classifier(c)
    classifier.build()
    names = [chr(ord("a") + i) for i in range(num_classes)]
    metadata = export.export_serving_model(family, family.generator(model), classifier, c,
                                           names, export_dir, velocity_bank=None)
    return metadata, c, model


def check_export_generates_by_class(family, export_dir):
    """Exports a test-preset `family` that takes y_a and no velocities; its `generate`
    signature (appearance, class, seed) gives uint8 64x64 videos whose frame 0 is y_a, which
    change with the class and not between two calls with the same seed. Returns (the loaded
    SavedModel, config)."""
    import tensorflow as tf
    metadata, c, _ = export_test_model(family, export_dir)
    assert metadata["model"] == family.name
    assert metadata["signature_inputs"] == {"generate": ["appearance", "motion_class", "seed"]}
    loaded = tf.saved_model.load(export_dir)
    assert "generate_with_velocity" not in loaded.signatures
    clips = make_clips(2, 3, c.num_keypoints, seed=3)
    request = dict(appearance=tf.constant(np.repeat(clips["video"][:1, 0], 3, axis=0)),
                   motion_class=tf.constant([0, 1, 2], tf.int32),
                   seed=tf.constant([7, 7, 7], tf.int64))
    video = loaded.signatures["generate"](**request)["video"].numpy()
    assert video.shape == (3, c.num_frames, 64, 64, 3) and video.dtype == np.uint8
    np.testing.assert_array_equal(video[:, 0], request["appearance"].numpy())   # frame 0 = y_a
    diffs = [np.abs(video[i, 1:].astype(int) - video[j, 1:].astype(int)).mean()
             for i, j in ((0, 1), (0, 2), (1, 2))]
    assert min(diffs) > 0.0, diffs                                       # the class matters
    again = loaded.signatures["generate"](**request)["video"].numpy()
    np.testing.assert_array_equal(video, again)                          # same seed, same video
    return loaded, c
