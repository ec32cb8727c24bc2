"""The tf.Example contract between preprocessing, training, evaluation and serving.

Every preprocessed clip is one tf.Example with these features (appendix B.1 of the paper):
  video         bytes   raw uint8 video, T x H x W x 3 (T=32, H=W=64), C order
  keypoints     float   T * 2k keypoint coordinates in frame pixels, (x, y) per keypoint
  landmarks     float   T * 2L coordinates of all the dataset style's L landmarks (faces: the 68
                        OpenFace points, gestures: the 9 joints), same frames, crop, flip and
                        layout as keypoints; for the keypoint detector of the B.4 evaluation
  velocity      float   (T-1) * 2k frame-to-frame keypoint deltas divided by VELOCITY_SCALE,
                        clipped to [-1, 1] so D_m's tanh velocity head can fit them (§3.2)
  motion_class  int64   class id in [0, num_classes)
  subject       bytes   identity id (splits are by subject, never by clip)
  clip_id       bytes   unique id of the source clip (+ augmentation suffix)
"""

VIDEO = "video"
KEYPOINTS = "keypoints"
LANDMARKS = "landmarks"
VELOCITY = "velocity"
MOTION_CLASS = "motion_class"
SUBJECT = "subject"
CLIP_ID = "clip_id"

NUM_FRAMES = 32
FRAME_SIZE = 64
CHANNELS = 3

# Pixels per frame that map to velocity 1.0. Synthetic and real clips at stride <= 3 move keypoints
# by < 8 px/frame on the 64x64 crop, so clipping at +-1 rarely binds.
VELOCITY_SCALE = 8.0


def feature_spec(num_keypoints, num_frames=NUM_FRAMES, num_landmarks=None):
    """tf.io.parse_example spec for preprocessed clips with `num_keypoints` keypoints (k, a
    property of the dataset style: `amc_tf.data.datasets.get(name).num_keypoints`). The
    landmarks are in the spec only when `num_landmarks` (L, the style's `num_landmarks`) is given,
    so readers that do not need them also read examples without them."""
    import tensorflow as tf
    spec = {
        VIDEO: tf.io.FixedLenFeature([], tf.string),
        KEYPOINTS: tf.io.FixedLenFeature([num_frames * 2 * num_keypoints], tf.float32),
        VELOCITY: tf.io.FixedLenFeature([(num_frames - 1) * 2 * num_keypoints], tf.float32),
        MOTION_CLASS: tf.io.FixedLenFeature([], tf.int64),
        SUBJECT: tf.io.FixedLenFeature([], tf.string),
        CLIP_ID: tf.io.FixedLenFeature([], tf.string),
    }
    if num_landmarks is not None:
        spec[LANDMARKS] = tf.io.FixedLenFeature([num_frames * 2 * num_landmarks], tf.float32)
    return spec


def parse_examples(serialized, num_keypoints, num_frames=NUM_FRAMES, frame_size=FRAME_SIZE,
                   num_landmarks=None):
    """Parses a batch of serialized clips into shaped tensors.

    Returns a dict: video uint8 (B, T, H, W, 3), keypoints float32 (B, T, 2k), velocity float32
    (B, T-1, 2k), motion_class int32 (B,), subject / clip_id string (B,); with `num_landmarks`
    also landmarks float32 (B, T, 2L).
    """
    import tensorflow as tf
    parsed = tf.io.parse_example(serialized,
                                 feature_spec(num_keypoints, num_frames, num_landmarks))
    video = tf.io.decode_raw(parsed[VIDEO], tf.uint8)
    video = tf.reshape(video, [-1, num_frames, frame_size, frame_size, CHANNELS])
    out = {
        VIDEO: video,
        KEYPOINTS: tf.reshape(parsed[KEYPOINTS], [-1, num_frames, 2 * num_keypoints]),
        VELOCITY: tf.reshape(parsed[VELOCITY], [-1, num_frames - 1, 2 * num_keypoints]),
        MOTION_CLASS: tf.cast(parsed[MOTION_CLASS], tf.int32),
        SUBJECT: parsed[SUBJECT],
        CLIP_ID: parsed[CLIP_ID],
    }
    if num_landmarks is not None:
        out[LANDMARKS] = tf.reshape(parsed[LANDMARKS], [-1, num_frames, 2 * num_landmarks])
    return out


SHUFFLE_BUFFER = 1024


def shuffled_passes(elements, seed, source, count=None):
    """`elements` (serialized records, or of any structure) repeated forever, each pass
    in an order of its own: every block of SHUFFLE_BUFFER elements of pass p sorted by keys
    drawn statelessly from (`seed`, p, index);
    a random `seed` when None, drawn once here. Raises ValueError naming `source` when there is
    no element (passes of nothing would be looked for forever); `count`, where the caller knows
    it, spares reading one (which would discard a half-filled `cache()` of `elements`).

    Every iterator of the result yields the same sequence. `shuffle(reshuffle_each_iteration)`
    + `repeat()` would not: each pass draws its seeds from one generator the dataset's
    iterators share, so an iterator that read ahead into a new pass (Keras `fit` peeks at a
    batch through a first iterator, then makes another; prefetching decides how far the first
    got) changes the order the next one trains on, and the workers of a multi-worker job would
    no longer split the same global batches. (Stateless keys, not `shuffle(seed=tensor)`:
    a tensor seed breaks under a global seed of 0.)
    """
    import random
    import tensorflow as tf
    empty = (count == 0 if count is not None else
             tf.executing_eagerly() and not any(True for _ in elements.take(1)))
    if empty:
        raise ValueError(f"no records to repeat in {source} (an empty split, or the record "
                         f"filter keeps none)")
    base = random.SystemRandom().randrange(2 ** 31) if seed is None else int(seed)

    def one_pass(p):
        def key(i, element):
            salt = tf.stack([tf.constant(base, tf.int64), p * 2 ** 32 + i])
            return tf.random.stateless_uniform([], salt, minval=None, maxval=None,
                                               dtype=tf.int64), element
        blocks = elements.enumerate().map(key).batch(SHUFFLE_BUFFER)
        return blocks.map(lambda keys, block: tf.nest.map_structure(
            lambda part: tf.gather(part, tf.argsort(keys)), block)).unbatch()
    return tf.data.Dataset.counter().flat_map(one_pass)


def records(file_pattern, record_filter=None):
    """The serialized records of (GZIP or plain) TFRecord files, files in glob order; those
    `record_filter(serialized) -> bool` keeps where given."""
    import tensorflow as tf
    files = tf.io.gfile.glob(file_pattern)
    if not files:
        raise FileNotFoundError(f"no TFRecord files match {file_pattern!r}")
    compression = "GZIP" if files[0].endswith(".gz") else None
    ds = tf.data.TFRecordDataset(files, compression_type=compression)
    return ds if record_filter is None else ds.filter(record_filter)


def first_clips(file_pattern, num_keypoints, count):
    """The `count` clips of the smallest clip ids (all when fewer), parsed as one batch: the
    same clips, in the same order, whatever order parallel Beam workers wrote the records in
    (the contact sheets' appearances)."""
    import heapq

    import tensorflow as tf
    spec = {CLIP_ID: tf.io.FixedLenFeature([], tf.string)}
    kept = heapq.nsmallest(
        count, ((tf.io.parse_single_example(s, spec)[CLIP_ID].numpy(), s)
                for s in records(file_pattern)), key=lambda pair: pair[0])
    if not kept:
        raise ValueError(f"{file_pattern} holds no clip")
    return parse_examples(tf.stack([serialized for _, serialized in kept]), num_keypoints)


def make_dataset(file_pattern, num_keypoints, batch_size, shuffle=True, repeat=True,
                 num_frames=NUM_FRAMES, frame_size=FRAME_SIZE, drop_remainder=True, seed=None,
                 num_landmarks=None, record_filter=None):
    """A tf.data pipeline of parsed batches from (GZIP or plain) TFRecord files; landmarks only
    with `num_landmarks` (as in `parse_examples`); `record_filter(serialized) -> bool` keeps
    some records only (e.g. a validation hold-out)."""
    import tensorflow as tf
    kept = records(file_pattern, record_filter)
    if shuffle and repeat:
        ds = shuffled_passes(kept, seed, repr(file_pattern))
    elif shuffle:
        ds = kept.shuffle(SHUFFLE_BUFFER, seed=seed, reshuffle_each_iteration=True)
    else:
        ds = kept.repeat() if repeat else kept
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    ds = ds.map(lambda s: parse_examples(s, num_keypoints, num_frames, frame_size,
                                         num_landmarks),
                num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
