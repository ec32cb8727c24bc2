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
