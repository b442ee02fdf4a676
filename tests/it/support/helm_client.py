"""The real Helm client for the tests: Helm v4's own Go SDK (helm-python-sdk, which
`bash .ci/setup-helm` installs into target/helm-venv), driven without any `helm` binary.

Run with that venv's Python, with HOME (and XDG_*_HOME) naming a directory of the run's own:
Helm keeps its repository cache there, and reads where it is only from the environment the
process starts with. Reads a JSON list of steps on stdin, runs them in order and
prints a JSON list of their answers on stdout. A failing step prints what failed on stderr
and exits 1; a missing SDK exits 3 naming the setup script.

Steps:
  {"op": "package", "dest": DIR, "charts": [{"name", "version", "app_version"?, "subdir"?,
   "metadata"?: {Chart.yaml keys}}]}
      `helm create NAME` once per chart name, its Chart.yaml rewritten with the metadata, then
      `helm package --version V --app-version A` into DIR/subdir. Answer: {"charts": [{"name",
      "version", "path"}]}.
  {"op": "index", "dir": DIR, "base_url"?: URL, "merge"?: FILE}
      `helm repo index DIR [--url URL] [--merge FILE]`. Answer: {"charts": {name: [version]}}.
  {"op": "repo_index", "repo_url": URL}
      The repository's index as Helm reads it. Answer: {"apiVersion", "entries": {name:
      [{"version", "digest", "urls", "appVersion", "created"}]}}.
  {"op": "pull", "repo_url": URL, "name": NAME, "version": V, "dest": DIR}
      `helm pull NAME --repo URL --version V -d DIR`, then the archive loaded by Helm. Answer:
      {"file", "sha256", "chart": {Chart.yaml as loaded}, "templates": [template names]}.
  {"op": "pull_all", "repo_url": URL, "dest": DIR}
      `repo_index`, then `pull` of every version of every chart it lists. Answer:
      {"apiVersion", "pulled": [{"name", "version", "digest", "urls", and pull's answer}]}.
"""

import hashlib
import json
import os
import sys
import tempfile

SETUP = "run `bash .ci/setup-helm` (it installs helm-python-sdk into target/helm-venv)"


def fail(message, code=1):
    print(f"helm_client.py: {message}", file=sys.stderr)
    sys.exit(code)


try:
    import helm_python as helm
except ImportError as e:
    fail(f"helm-python-sdk does not import with {sys.executable} ({e}): {SETUP}", code=3)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            h.update(block)
    return h.hexdigest()


def chart_yaml(name, metadata):
    # JSON scalars and lists are YAML flow nodes, so each value is written as JSON.
    fields = {
        "apiVersion": "v2",
        "name": name,
        "description": "A Helm chart for Kubernetes",
        "type": "application",
        "version": "0.1.0",
        "appVersion": "1.16.0",
    }
    fields.update(metadata)
    return "".join(f"{k}: {json.dumps(v)}\n" for k, v in fields.items())


def package(step):
    written = {}
    out = []
    with tempfile.TemporaryDirectory() as scratch:
        for c in step["charts"]:
            name = c["name"]
            src = os.path.join(scratch, name)
            if name not in written:
                helm.Chart.create(name, scratch).close()
            text = chart_yaml(name, c.get("metadata", {}))
            if written.get(name) != text:
                with open(os.path.join(src, "Chart.yaml"), "w") as f:
                    f.write(text)
                written[name] = text
            dest = os.path.join(step["dest"], c.get("subdir", ""))
            os.makedirs(dest, exist_ok=True)
            path = helm.package(src, destination=dest, version=c["version"], app_version=c.get("app_version"))
            out.append({"name": name, "version": c["version"], "path": os.path.abspath(path)})
    return {"charts": out}


def index(step):
    idx = helm.repo_index_generate(step["dir"], base_url=step.get("base_url"), merge=step.get("merge"))
    return {"charts": {n: [e["version"] for e in v] for n, v in idx.get("entries", {}).items()}}


def repo_index(step):
    idx = helm.repo_index(step["repo_url"])
    keep = ("version", "digest", "urls", "appVersion", "created")
    entries = {n: [{k: e.get(k) for k in keep} for e in v] for n, v in (idx.get("entries") or {}).items()}
    return {"apiVersion": idx.get("apiVersion"), "entries": entries}


def pull(step):
    dest = tempfile.mkdtemp(dir=step["dest"])
    helm.pull(step["name"], repo_url=step["repo_url"], version=step["version"], destination=dest)
    files = os.listdir(dest)
    if len(files) != 1:
        raise RuntimeError(f"helm pull {step['name']} {step['version']} left {files} in {dest}")
    path = os.path.join(dest, files[0])
    with helm.Chart.load(path) as chart:
        meta = chart.metadata
        templates = sorted(t["name"] for t in chart.templates)
    return {"file": files[0], "path": path, "sha256": sha256(path), "chart": meta, "templates": templates}


def pull_all(step):
    idx = repo_index(step)
    pulled = []
    for name, versions in sorted(idx["entries"].items()):
        for e in versions:
            got = pull({"repo_url": step["repo_url"], "name": name, "version": e["version"], "dest": step["dest"]})
            pulled.append({"name": name, **e, **got})
    return {"apiVersion": idx["apiVersion"], "pulled": pulled}


OPS = {"package": package, "index": index, "repo_index": repo_index, "pull": pull, "pull_all": pull_all}


def main():
    steps = json.load(sys.stdin)
    answers = []
    for step in steps:
        op = OPS.get(step.get("op"))
        if op is None:
            fail(f"unknown step {step!r}")
        try:
            answers.append(op(step))
        except helm.HelmError as e:
            fail(f"{step['op']} {json.dumps({k: v for k, v in step.items() if k != 'charts'})}: {type(e).__name__}: {e}")
    json.dump(answers, sys.stdout)


if __name__ == "__main__":
    main()
