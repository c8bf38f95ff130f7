"""The same stage on a local Ray instance the test starts (~12 s): identical output to the local executor."""
import signal

import pytest

from lmjax.data.web import shards, stage

ray = pytest.importorskip("ray", reason="the Ray executor needs `pip install 'lmjax[ray]'`")


def test_ray_executor_matches_local_executor(shipped_warc, clean_config, tmp_path):
  handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
  ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
  try:
    address = ray.get_runtime_context().gcs_address
    ray_summary = stage.run(clean_config, tmp_path / "ray", input_pattern=str(shipped_warc), executor="ray",
                            ray_address=address)
  finally:
    ray.shutdown()
    for s, handler in handlers.items():  # ray.init leaves its SIGTERM handler installed after shutdown
      signal.signal(s, handler)
  local_summary = stage.run(clean_config, tmp_path / "local", input_pattern=str(shipped_warc), workers=1)
  rows = [[doc.to_json() for doc in shards.read_documents(tmp_path / name / "docs" / "00000.jsonl.zst")]
          for name in ("ray", "local")]
  assert rows[0] == rows[1] and ray_summary["docs_written"] == local_summary["docs_written"] > 0
