//! Secrets (registry passwords, tokens, NGC API keys, passwords in URLs) never reach the
//! output, the JSON event stream, `--diff`, error messages or the archive; `no_log` hides
//! results, loop items and diffs. Modules still get the real values.

use base64::Engine;

use crate::support::{self, Project, tree, upstreams};

const NGC_KEY: &str = "nvapi-S3cretKeyValue0042";
const REGISTRY_PASSWORD: &str = "reg-passw0rd-from-a-template";
const URL_PASSWORD: &str = "url-s3cret-in-userinfo";
const BEARER: &str = "bearer-s3cret-token";
const EXTRA_VAR_TOKEN: &str = "extra-vars-token-0099";

/// Every form a secret can take in the output: itself and, for the registry login, the
/// base64 `user:password` pair of HTTP basic auth and Docker's config.json.
fn forms() -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    vec![
        NGC_KEY.to_string(),
        REGISTRY_PASSWORD.to_string(),
        URL_PASSWORD.to_string(),
        BEARER.to_string(),
        EXTRA_VAR_TOKEN.to_string(),
        b64.encode(format!("$oauthtoken:{NGC_KEY}")),
    ]
}

fn assert_clean(what: &str, text: &str) {
    for s in forms() {
        assert!(!text.contains(&s), "{what} shows the secret {s}:\n{text}");
    }
}

#[test]
fn secrets_never_reach_output_events_diff_or_errors_and_no_log_hides_items() {
    let base = support::serve_routes(vec![("/private", 401, b"who are you".to_vec()), ("/echo", 200, Vec::new())]);
    let p = Project::new();
    let url = base.replace("http://", &format!("http://deploy:{URL_PASSWORD}@"));
    p.file(
        "site.yml",
        &format!(
            r#"- hosts: localhost
  gather_facts: false
  vars:
    ngc_api_key: "{NGC_KEY}"
    registry_password: "{{{{ 'reg-passw0rd' ~ '-from-a-template' }}}}"
    docker_registry_credentials:
      nvcr.io: {{username: "$oauthtoken", password: "{{{{ ngc_api_key }}}}"}}
    private_url: "{url}/private"
  tasks:
    - name: Show the credentials
      debug: var=docker_registry_credentials
    - name: Say the key
      debug:
        msg: "key {{{{ ngc_api_key }}}}, token {{{{ registry_token }}}}, docker auth {{{{ ('$oauthtoken:' ~ ngc_api_key) | b64encode }}}}"
    - name: Write a config holding them
      copy:
        content: "key={{{{ ngc_api_key }}}}\npassword={{{{ registry_password }}}}\n"
        dest: "{{{{ playbook_dir }}}}/out/creds.conf"
    - name: Download with a password in the URL
      get_url:
        url: "{{{{ private_url }}}}"
        dest: "{{{{ playbook_dir }}}}/out/private"
      ignore_errors: true
    - name: Send a bearer token that comes back
      uri:
        url: "{base}/echo"
        method: POST
        headers: {{Authorization: "Bearer {BEARER}"}}
        body: "echoed {BEARER}"
        return_content: true
      register: echoed
    - name: Fail naming the password
      fail:
        msg: "login failed with {{{{ registry_password }}}}"
      ignore_errors: true
    - name: A loop under no_log
      debug:
        msg: "{{{{ item }}}}"
      loop: ["shown-only-without-no-log"]
      no_log: true
    - name: A change under no_log
      copy:
        content: "hidden-diff-line\n"
        dest: "{{{{ playbook_dir }}}}/out/hidden.conf"
      no_log: true
"#
        ),
    );
    std::fs::create_dir(p.path("out")).unwrap();
    let events = p.path("events.jsonl");
    let run = p.playbook("site.yml", &["-vvv", "--diff", "--json-events", events.to_str().unwrap(), "-e", &format!("registry_token={EXTRA_VAR_TOKEN}")]);
    run.success();
    assert_clean("stdout", &run.stdout);
    assert_clean("stderr", &run.stderr);
    let ev = std::fs::read_to_string(&events).unwrap();
    assert_clean("the JSON event stream", &ev);
    // The masks stand where the secrets were: the debug output, the diff, the failure, the
    // URL in get_url's error, the echoed body.
    run.has("key ********, token ********, docker auth ********")
        .has("+key=********")
        .has("+password=********")
        .has("login failed with ********")
        .has("deploy:********@127.0.0.1")
        .has("echoed ********");
    assert!(ev.contains("********"), "{ev}");
    // no_log: the item and the diff are hidden too.
    run.has("(item=None)").lacks("shown-only-without-no-log").lacks("hidden-diff-line");
    assert!(!ev.contains("shown-only-without-no-log") && !ev.contains("hidden-diff-line"), "{ev}");
    // The modules had the real values.
    assert_eq!(p.read("out/creds.conf"), format!("key={NGC_KEY}\npassword={REGISTRY_PASSWORD}\n"));
    assert_eq!(p.read("out/hidden.conf"), "hidden-diff-line\n");

    // --list-vars shows where values come from, not the secrets.
    let listed = p.playbook("site.yml", &["--list-vars", "-e", &format!("registry_token={EXTRA_VAR_TOKEN}")]);
    listed.success();
    assert_clean("--list-vars", &listed.stdout);
    listed.has("ngc_api_key = \"********\"").has("registry_token = \"********\"");
}

#[test]
fn build_offline_cache_keeps_credentials_out_of_the_cache_and_the_archive() {
    let up = upstreams::Upstreams::start();
    let p = Project::new();
    let cache = p.path("cache");
    let archive = p.path("deepops-archive.tar");
    p.file("config.yml", &up.config(&cache, &archive, "3.11"));
    // pip sends the URL's credentials to the index, which lets anyone read; the registry never
    // asks for them (no challenge), yet they are in the task's arguments.
    let index = up.pypi.index().replace("http://", &format!("http://pip-user:{URL_PASSWORD}@"));
    p.file(
        "secrets.yml",
        &format!(
            "pip_index_url: \"{index}\"\nngc_api_key: \"{NGC_KEY}\"\ndocker_registry_credentials:\n  \"{}\": {{username: \"$oauthtoken\", password: \"{{{{ ngc_api_key }}}}\"}}\n",
            up.reg.host()
        ),
    );
    let pb = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks/build-offline-cache.yml");
    let events = p.path("events.jsonl");
    let run = p.airlock(&["playbook", pb.to_str().unwrap(), "-e", "@config.yml", "-e", "@secrets.yml", "-vvv", "--json-events", events.to_str().unwrap()]);
    run.success();
    assert_clean("stdout", &run.stdout);
    assert_clean("stderr", &run.stderr);
    assert_clean("the JSON event stream", &std::fs::read_to_string(&events).unwrap());
    // Neither the archive nor any file of the cache holds them, in any form.
    let bytes = std::fs::read(&archive).unwrap();
    for s in forms() {
        assert!(!bytes.windows(s.len()).any(|w| w == s.as_bytes()), "the archive holds {s}");
    }
    for (path, data) in tree(&cache) {
        for s in forms() {
            assert!(!data.windows(s.len()).any(|w| w == s.as_bytes()), "{path} in the cache holds {s}");
        }
    }
    // The Python packages did come through the index with credentials.
    assert!(tree(&cache).keys().any(|k| k.ends_with(".whl")), "no wheel downloaded");
}

/// `PWD` is the shell's working directory, not a password: after fact gathering it is in
/// `ansible_env`, and a run from a directory must still print that directory in its errors.
#[test]
fn the_working_directory_is_not_taken_for_a_secret() {
    let p = Project::new();
    p.file("undef.yml", "- hosts: localhost\n  gather_facts: true\n  tasks:\n    - debug:\n        msg: \"{{ not_defined_anywhere }}\"\n");
    let dir = p.path("");
    let dir = dir.to_str().unwrap().trim_end_matches('/');
    let pb = p.path("undef.yml");
    let run = p.command(
        std::path::Path::new(env!("CARGO_BIN_EXE_airlock")),
        &["playbook", "-i", "localhost,", pb.to_str().unwrap()],
        &[("PWD", dir), ("OLDPWD", dir)],
    );
    assert_eq!(run.code, 2, "the undefined variable fails the host\n{}{}", run.stdout, run.stderr);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(all.contains("not_defined_anywhere"), "the error names the variable:\n{all}");
    assert!(all.contains(&format!("{dir}/undef.yml")), "the error names the playbook by its path:\n{all}");
    assert!(!all.contains("********/"), "the directory is not masked:\n{all}");
}
