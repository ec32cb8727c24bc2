"""`amc-tf serve`, `amc-tf generate` and `amc-tf evaluate`. TensorFlow is imported only when a command runs."""

import os

from amc_tf.arguments import at_least, int64, positive


def serve(args):
    """Serves until SIGTERM / SIGINT, then exits within about --grace seconds (never returns)."""
    import logging
    import signal
    import sys

    from serving import server

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    model_server = server.ModelServer(
        args.model_base_path, args.model_name, host=args.host, port=args.port,
        rest_port=args.rest_port if args.rest_port >= 0 else None,
        max_batch_size=args.max_batch_size, max_message_bytes=args.max_message_bytes,
        poll_interval_s=args.poll_interval, workers=args.workers,
        rest_timeout_s=args.rest_timeout, rest_max_connections=args.rest_max_connections).start()

    def shutdown(signum, _frame):
        logging.info("signal %d: stopping (grace %.0f s)", signum, args.grace)
        # stop() joins threads: run it off the signal handler's frame.
        import threading
        threading.Thread(target=model_server.stop, args=(args.grace,)).start()

    signal.signal(signal.SIGINT, shutdown)
    signal.signal(signal.SIGTERM, shutdown)
    print(f"serving {args.model_name} from {args.model_base_path}: gRPC {args.host}:"
          f"{model_server.port}" + (f", REST {args.host}:{model_server.rest_port}"
                                    if model_server.rest_port else ""), flush=True)
    model_server.wait()
    # stop() gave in-flight requests their grace; one still computing would hold the process
    # (gRPC's worker threads are joined at interpreter exit): exit without waiting for it.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def generate(args):
    import sys

    from serving import client

    if args.image is not None:
        problem = _image_problem(args.image)
        if problem:
            print(f"amc-tf generate: error: {problem}", file=sys.stderr, flush=True)
            return 2
    import grpc
    try:
        metadata = client.get_metadata(args.server, args.model_name, args.timeout)
    except grpc.RpcError as e:
        print(f"amc-tf generate: error: {_server_problem(e, args)}", file=sys.stderr, flush=True)
        return 1
    # The model's metadata says whether `generate` takes an appearance (G3AN does not).
    takes_image = "appearance" in metadata["signature_inputs"]["generate"]
    if takes_image != (args.image is not None):
        reason = "needs an appearance image: give --image" if takes_image else \
            "generates from its class and seed only and takes no appearance: drop --image"
        print(f"amc-tf generate: error: model {metadata['model']!r} ({args.model_name}) "
              f"{reason}", file=sys.stderr, flush=True)
        return 2
    try:
        client.resolve_class(args.motion, metadata["class_names"])
    except ValueError as e:
        print(f"amc-tf generate: error: --motion: {e}", file=sys.stderr, flush=True)
        return 2
    try:
        video, velocity = client.generate_video(
            args.server, args.image, args.motion, args.seed, model_name=args.model_name,
            timeout=args.timeout, metadata=metadata)
    except grpc.RpcError as e:
        print(f"amc-tf generate: error: {_server_problem(e, args)}", file=sys.stderr, flush=True)
        return 1
    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    written = [client.write_gif(video, args.out, fps=args.fps)]
    mp4 = client.write_mp4(video, os.path.splitext(args.out)[0] + ".mp4", fps=args.fps)
    if mp4:
        written.append(mp4)
    if args.contact_sheet:
        written.append(client.write_contact_sheet(video, args.contact_sheet))
    name = metadata["class_names"][client.resolve_class(args.motion, metadata["class_names"])]
    drawn = "" if velocity is None else f", velocity {tuple(velocity.shape)}"
    print(f"generated {video.shape[0]} frames of {name!r} (seed {args.seed}){drawn}: "
          f"{', '.join(written)}")
    return 0


def _image_problem(path):
    """Why `path` cannot be an appearance image, or None (checked before the server is asked:
    a bad argument writes nothing)."""
    if not os.path.isfile(path):
        return f"--image {path}: no such file"
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as image:
            image.verify()
    except (OSError, UnidentifiedImageError, SyntaxError) as e:
        return f"--image {path} is not a readable PNG or JPEG ({type(e).__name__}: {e})"
    return None


def _server_problem(error, args):
    code = error.code()
    if code.name == "UNAVAILABLE":
        return (f"no model server answers at {args.server} ({error.details()}); start one "
                f"with `amc-tf serve --model-base-path ...` or give --server HOST:PORT")
    if code.name == "NOT_FOUND":
        return (f"the server at {args.server} serves no model named {args.model_name!r} "
                f"({error.details()}); give --model-name")
    return f"the server at {args.server} answered {code.name}: {error.details()}"


def evaluate(args):
    from serving import evaluate as evaluation

    report = evaluation.evaluate(
        args.data, saved_model_dir=args.saved_model, server=args.server,
        model_name=args.model_name, batch_size=args.batch_size,
        feature_extractor=args.feature_extractor, feature_key=args.feature_key,
        split=args.split)
    print(evaluation.format_report(report))
    if args.out:
        evaluation.write_report(report, args.out)
        print(f"wrote {args.out}")
    return 0


def register(subparsers):
    p = subparsers.add_parser(
        "serve", help="serve pushed models over TF Serving's gRPC (and REST) API")
    p.add_argument("--model-base-path", required=True,
                   help="TF Serving base path: <dir>/<version>/ SavedModels")
    p.add_argument("--model-name", default="amc_gan")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (loopback by default)")
    p.add_argument("--port", type=at_least(0), default=8500, help="gRPC port (0: pick a free one)")
    p.add_argument("--rest-port", type=at_least(-1), default=8501,
                   help="REST port; -1 disables REST")
    p.add_argument("--max-batch-size", type=positive(int), default=None,
                   help="request batch limit (default: the one stored in the model)")
    p.add_argument("--max-message-bytes", type=positive(int), default=64 << 20,
                   help="largest gRPC message / REST body, and the most one input tensor may "
                        "decode to")
    p.add_argument("--poll-interval", type=positive(float), default=2.0,
                   help="seconds between checks for a newly pushed version")
    p.add_argument("--workers", type=positive(int), default=8,
                   help="concurrent gRPC requests (and as many REST predicts)")
    p.add_argument("--rest-timeout", type=positive(float), default=30.0,
                   help="seconds a REST connection may send nothing before it is closed")
    p.add_argument("--rest-max-connections", type=positive(int), default=64,
                   help="REST connections served at once; more are answered 503")
    p.add_argument("--grace", type=at_least(0.0, float), default=10.0,
                   help="seconds in-flight requests get on shutdown; the process exits "
                        "then, even if a request is still computing")
    p.set_defaults(func=serve)

    g = subparsers.add_parser("generate", help="ask a model server for a video (gRPC)")
    g.add_argument("--server", default="127.0.0.1:8500", help="gRPC HOST:PORT")
    g.add_argument("--image", default=None,
                   help="appearance image (PNG/JPEG), for models that take one (the model's "
                        "metadata says; G3AN takes none: class and seed only)")
    g.add_argument("--motion", required=True, help="motion class name or id")
    g.add_argument("--seed", type=int64, default=0)
    g.add_argument("--out", required=True, help="output GIF (an MP4 is written beside it)")
    g.add_argument("--contact-sheet", default=None, help="also write the frames as one PNG")
    g.add_argument("--model-name", default="amc_gan")
    g.add_argument("--fps", type=positive(int), default=8)
    g.add_argument("--timeout", type=positive(float), default=60.0)
    g.set_defaults(func=generate)

    e = subparsers.add_parser(
        "evaluate", help="the metric suite for an exported model or a running server")
    source = e.add_mutually_exclusive_group(required=True)
    source.add_argument("--saved-model", default=None,
                        help="an exported SavedModel directory (e.g. <home>/serving_model/"
                             "amc_gan/<version>)")
    source.add_argument("--server", default=None, help="a model server's gRPC HOST:PORT")
    e.add_argument("--data", required=True,
                   help="preprocessed clips (`amc-tf preprocess` OUT or ExampleGen's examples)")
    e.add_argument("--split", default="eval", help="the split to evaluate on (default eval)")
    e.add_argument("--model-name", default="amc_gan", help="the served model (with --server)")
    e.add_argument("--batch-size", type=positive(int), default=16)
    e.add_argument("--feature-extractor", default=None,
                   help="a video feature extractor SavedModel: adds the usual video FID "
                        "(feature_fid) on its features")
    e.add_argument("--feature-key", default=None,
                   help="the extractor's feature output, when it returns several")
    e.add_argument("--out", default=None, help="also write the report as JSON here")
    e.set_defaults(func=evaluate)
