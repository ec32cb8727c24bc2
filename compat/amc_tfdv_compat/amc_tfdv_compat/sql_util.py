"""Stand-in for tfx_bsl.arrow.sql_util (removed in tfx-bsl 1.17): SQL slicing is unsupported."""

_MESSAGE = (
    "SQL-based slicing (tfx_bsl.arrow.sql_util.RecordBatchSQLSliceQuery) is not supported in "
    "amc_tf's stack: tfx-bsl >= 1.17 removed its ZetaSQL backend and TFDV 1.16.1 still refers "
    "to it. Use feature-based slice functions instead.")


class RecordBatchSQLSliceQuery:
    """Raises at construction: there is no SQL engine behind it in tfx-bsl >= 1.17."""

    def __init__(self, *args, **kwargs):
        del args, kwargs
        raise NotImplementedError(_MESSAGE)
