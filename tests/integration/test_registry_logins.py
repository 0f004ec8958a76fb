"""A login an admin can mend (issue 68, docs/REGISTRY.md "Credentials"; docs/API.md
"Registries"): a registry or its token realm refusing arca's login says which registry and which
password-file (its path, never the password) in the client's Arca-Error, one line of the log
and the status (`login_error`, `arca status`); a SIGHUP reads every password file again, logs
which changed, and the next pull logs in with the new password; a file that can no longer be
read is said in one line and the login read before is kept."""

import os
import subprocess

import registry as reg
from conftest import ARCA_BIN, wait_for
from registry import Puller, build_image, scripted, v2, write_secret  # noqa: F401

NAME = "registry.lab"
USER = "lab-bot"
PASSWORD = "pw-Rt5mQ8vL2nXc7Hs4"
WRONG = "pw-wrongWrong8813"


def entry(arca):
    return reg.registry_entry(arca, NAME)


def mirror_with_login(start_arca, up, workdir, password):
    return reg.mirror_with_login(start_arca, up, workdir, NAME, USER, password,
                                 os.path.join(workdir, "access.log"))


def assert_refusal_names_the_file(arca, path, answer):
    """The client's Arca-Error and message, one log line and the status name the registry
    and the password file; nothing says a token was dropped; the password shows nowhere."""
    assert answer.status != 200, answer.status
    said = answer.headers.get("arca-error", "")
    assert NAME in said and path in said, said
    assert "token is dropped" not in said, said
    assert path in answer.json()["errors"][0]["message"], answer.body
    lines = wait_for(lambda: [x for x in arca.read_log().splitlines()
                              if NAME in x and path in x and "login" in x],
                     "the refused login's line in the log")
    assert lines, arca.read_log()[-2000:]
    e = wait_for(lambda: (e := entry(arca))["login_error"] and e, "the status's login_error")
    assert path in e["login_error"] and e["password_file"] == path, e
    p = subprocess.run([ARCA_BIN, "status", "--server", arca.base], capture_output=True,
                       text=True, timeout=10)
    line = [x for x in p.stdout.splitlines() if x.startswith(f"registry   {NAME}:")]
    assert len(line) == 1 and path in line[0] and "login refused" in line[0], p.stdout
    for text in (arca.read_log(), said, p.stdout, str(arca.status())):
        assert WRONG not in text and PASSWORD not in text


def mend_and_pull(arca, path, image, repo):
    """The file mended, SIGHUP: the log says it changed (not its content), the pull works and
    the status says no login error."""
    write_secret(os.path.dirname(path), os.path.basename(path), PASSWORD)
    arca.reload(f"registry {NAME}: password file {path} changed")
    got, _ = Puller(arca.base, prefix=NAME).pull(repo, image.tag)
    assert sorted(got) == sorted(b.digest for b in image.blobs())
    assert entry(arca)["login_error"] is None
    assert PASSWORD not in arca.read_log() and WRONG not in arca.read_log()


def test_a_basic_auth_registry_refusing_the_login_names_its_file(start_arca, scripted,
                                                                  workdir):
    up = scripted(auth="basic", users={USER: PASSWORD})
    image = up.add("team/app", build_image(os.path.join(workdir, "a"), [65536], "v1"))
    arca, path = mirror_with_login(start_arca, up, workdir, WRONG)
    a = v2(arca, f"{NAME}/team/app/manifests/v1")
    assert_refusal_names_the_file(arca, path, a)
    mend_and_pull(arca, path, image, "team/app")


def test_a_token_realm_refusing_the_login_names_its_file(start_arca, scripted, workdir):
    up = scripted(auth="token", users={USER: PASSWORD})
    image = up.add("team/private", build_image(os.path.join(workdir, "a"), [65536], "v1"))
    arca, path = mirror_with_login(start_arca, up, workdir, WRONG)
    a = v2(arca, f"{NAME}/team/private/manifests/v1")
    assert_refusal_names_the_file(arca, path, a)
    assert up.issued() == []
    mend_and_pull(arca, path, image, "team/private")


def test_a_password_changed_upstream_is_taken_at_sighup(start_arca, scripted, workdir):
    """The realm's password is changed (the old one refused from then), the admin writes the
    new one to the file and sends SIGHUP: the tokens of the old one are dropped, and the next
    pull of something new logs in with the new password."""
    up = scripted(auth="token", users={USER: WRONG})
    first = up.add("team/private", build_image(os.path.join(workdir, "a"), [65536], "v1"))
    second = up.add("team/private", build_image(os.path.join(workdir, "b"), [70_000], "v2"))
    arca, path = mirror_with_login(start_arca, up, workdir, WRONG)
    got, _ = Puller(arca.base, prefix=NAME).pull("team/private", "v1")
    assert sorted(got) == sorted(b.digest for b in first.blobs())
    up.users[USER] = PASSWORD
    with up.lock:
        up.tokens.clear()  # the realm's rotation revokes what it gave
    before = len(up.token_requests())
    mend_and_pull(arca, path, second, "team/private")
    assert len(up.token_requests()) > before


def test_an_unreadable_password_file_at_sighup_keeps_the_login(start_arca, scripted, workdir):
    """The file is gone at a SIGHUP: a bad configuration as any other (the reload is refused,
    its one line names the registry and the file and says the running configuration, the
    login read before among it, is kept); pulls go on with it; an unchanged file is not said
    to have changed."""
    up = scripted(auth="basic", users={USER: PASSWORD})
    first = up.add("team/app", build_image(os.path.join(workdir, "a"), [65536], "v1"))
    second = up.add("team/app", build_image(os.path.join(workdir, "b"), [70_000], "v2"))
    arca, path = mirror_with_login(start_arca, up, workdir, PASSWORD)
    Puller(arca.base, prefix=NAME).pull("team/app", "v1")
    arca.reload("SIGHUP: reloaded")
    assert f"password file {path} changed" not in arca.read_log()
    os.remove(path)
    arca.reload("keeping the running configuration")
    lines = [x for x in arca.read_log().splitlines() if path in x]
    assert len(lines) == 1 and NAME in lines[0] and "cannot read" in lines[0], lines
    got, _ = Puller(arca.base, prefix=NAME).pull("team/app", "v2")
    assert sorted(got) == sorted(b.digest for b in second.blobs())
    assert entry(arca)["login_error"] is None
    assert first and PASSWORD not in arca.read_log()
