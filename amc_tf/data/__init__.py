"""amc_tf.data: the datasets of appendix B.1 and their Beam preprocessing.

    datasets       the dataset styles (gestures, faces), each described once: get(name), names()
    features       the tf.Example contract (names, shapes, VELOCITY_SCALE, parse_examples)
    classes        the class vocabularies (gestures, emotions)
    keypoints      the keypoints of both styles and their flip maps
    synthetic      NATOPS-like gestures (write_gestures) and MUG-like faces (write_faces; drawn in
                   synthetic_faces, with what both share in synthetic_scene)
    adapters       raw layouts of both datasets: list and decode clips, reject bad ones
    clip_rules     B.1 rules on one clip: anchor/stride sampling, crop, flip, velocity
    preprocess     the Beam pipeline (PreprocessClips, run_preprocess)
    example_gen    VideoExampleGen, the TFX component running the same Beam transforms
    contact_sheet  PNG grids of preprocessed clips
"""
