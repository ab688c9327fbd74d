"""Ray Serve on a local cluster: two encoder replicas behind the same HTTP routes; requests spread over both; a
replica killed is replaced and the routes keep answering (with transformers' vectors)."""

import os
import signal
import time

import httpx
import numpy as np
import pytest
import torch
import transformers
from serving_process import free_ports

ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")

TEXTS = ["the cat sat on the mat", "a dog ran in the garden", "blue river stone"]


@pytest.fixture(scope="module")
def cluster(tiny_mlm, ray_to_itself):
    from bertkit.serving import ServerSettings
    from bertkit.serving.ray_serve import deploy

    http_port = free_ports(1)[0]
    ray.shutdown()  # a Ray Tune test earlier in this worker may have left its local cluster running
    ray.init(num_cpus=4, include_dashboard=False, logging_level="warning",
             runtime_env={"env_vars": {"PYTHONPATH": os.environ.get("PYTHONPATH", "")}})
    try:
        settings = ServerSettings(tiny_mlm[0], torch_threads=1, http_port=http_port).checked()
        deploy(settings, replicas=2)
        yield f"http://127.0.0.1:{http_port}"
    finally:
        serve.shutdown()
        ray.shutdown()


@pytest.fixture(scope="module")
def expected(tiny_mlm, minilm_dir):
    tokenizer = transformers.BertTokenizer.from_pretrained(minilm_dir)
    model = transformers.BertModel.from_pretrained(tiny_mlm[0]).eval()
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    mean = ((hidden * mask).sum(1) / mask.sum(1)).numpy()
    return mean / np.linalg.norm(mean, axis=1, keepdims=True)


def replica_pids(calls: int = 24) -> set[int]:
    handle = serve.get_deployment_handle("bertkit-encoder", app_name="bertkit")
    return {handle.info.remote().result()["pid"] for _ in range(calls)}


def test_two_replicas_answer_the_http_routes_and_a_killed_one_is_replaced(cluster, expected):
    with httpx.Client(base_url=cluster, timeout=60) as http:
        for _ in range(4):
            reply = http.post("/embed", json={"inputs": TEXTS})
            assert reply.status_code == 200
            np.testing.assert_allclose(reply.json(), expected, atol=1e-5)
        assert http.get("/info").json()["model_type"] == {"embedding": {"pooling": "mean"}}
        assert "te_request_count_total" in http.get("/metrics").text
        pids = replica_pids()
        assert len(pids) == 2  # calls are spread over both replicas
        victim = sorted(pids)[0]
        os.kill(victim, signal.SIGKILL)
        deadline, now = time.monotonic() + 120, set()
        while time.monotonic() < deadline:
            reply = http.post("/embed", json={"inputs": TEXTS})
            assert reply.status_code in (200, 424), reply.text  # answered, or failed cleanly mid-kill
            try:
                now = replica_pids(8)
            except Exception:  # the handle may still route to the dead replica for a moment
                now = set()
            if len(now) == 2 and victim not in now:
                break
            time.sleep(1)
        assert len(now) == 2 and victim not in now
        reply = http.post("/v1/embeddings", json={"input": TEXTS})
        assert reply.status_code == 200
        np.testing.assert_allclose([d["embedding"] for d in reply.json()["data"]], expected, atol=1e-5)
