"""`amc-tf demo`: the main job, end to end on the built-in synthetic default.

Grows with the project: it runs every stage that exists (see README "Main job").
"""


def run(args):
    from amc_tf import info
    print("amc_tf stack:")
    for name, version in info.stack_versions().items():
        print(f"  {name:28s} {version or 'NOT INSTALLED'}")
    return 0


def register(subparsers):
    p = subparsers.add_parser("demo", help="run the main job end to end (synthetic default)")
    p.add_argument("--home", default="demo_out", help="where every output of the demo goes")
    p.set_defaults(func=run)
