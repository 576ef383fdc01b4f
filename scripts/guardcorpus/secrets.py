#!/usr/bin/env python3
"""Labelled evaluation corpus for the guard's secret scanner (`secret.*` detectors).

Writes JSON Lines to stdout, one object per line:

    {"text": "...", "labels": ["secret.<id>"], "source": "generated/secrets"}

Positives: for every credential format, freshly generated values (built here from each
vendor's documented token format, independently of the Rust regexes) embedded in varied
carriers: a JSON object field, a log line, a `.env` line, a YAML line, a shell `export`, an
HTTP header, a prose sentence and a Python/JS assignment. `labels` lists the detectors that
should fire; a few formats are also, by construction, another format (a Supabase service-role
key is a JWT), and then both are listed.

Hard negatives (`"labels": []`): UUIDs, git SHAs, hex digests, base64 image data URLs,
version strings, documentation placeholders, English prose, URLs and connection strings
without credentials, JWT-like strings that are not JWTs.

Deterministic: the same `--seed` (default 7) gives the same corpus. Python 3 stdlib only.

    python3 scripts/guardcorpus/secrets.py [--seed N] [--per-rule N] > secrets.jsonl
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import string
import sys
from typing import Callable, Dict, List, Optional, Tuple

SOURCE = "generated/secrets"

UPPER = string.ascii_uppercase
LOWER = string.ascii_lowercase
DIGITS = string.digits
LETTERS = string.ascii_letters
ALNUM = LETTERS + DIGITS
HEX = "0123456789abcdef"
UPNUM = UPPER + DIGITS
LOWNUM = LOWER + DIGITS
URLSAFE = ALNUM + "_-"
B64 = ALNUM + "+/"
BASE32 = UPPER + "234567"
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l".upper()

# Substrings the scanner treats as documentation placeholders; generated positives avoid them.
PLACEHOLDER_WORDS = ("example", "xxxxxx", "placeholder", "your_", "your-", "<", ">", "redacted",
                     "changeme", "dummy", "sample")


class Gen:
    """Random helpers bound to one `random.Random`."""

    def __init__(self, rng: random.Random):
        self.r = rng

    def s(self, alphabet: str, n: int) -> str:
        return "".join(self.r.choice(alphabet) for _ in range(n))

    def hex(self, n: int) -> str:
        return self.s(HEX, n)

    def digits(self, n: int) -> str:
        return self.r.choice("123456789") + self.s(DIGITS, n - 1)

    def uuid(self) -> str:
        h = self.hex(32)
        v = h[:12] + "4" + h[13:16] + self.r.choice("89ab") + h[17:]
        return f"{v[:8]}-{v[8:12]}-{v[12:16]}-{v[16:20]}-{v[20:]}"

    def b64(self, nbytes: int) -> str:
        return base64.b64encode(self.bytes(nbytes)).decode()

    def b64url(self, data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    def bytes(self, n: int) -> bytes:
        return bytes(self.r.randrange(256) for _ in range(n))

    def word(self) -> str:
        return self.r.choice(WORDS)

    def host(self) -> str:
        return f"{self.word()}-{self.s(LOWNUM, 4)}.{self.r.choice(['internal', 'prod.acme-corp.io', 'eu-west-1.rds.amazonaws.com', 'svc.cluster.local', 'db.acme.net'])}"

    def password(self, lo: int = 12, hi: int = 18) -> str:
        return self.s(ALNUM, 2) + self.s(ALNUM + "._~!*-", self.r.randint(lo, hi) - 3) + self.s(ALNUM, 1)


WORDS = ("alpha bravo cedar delta ember falcon garnet harbor indigo juniper kestrel lumen "
         "meadow nimbus orchid pepper quartz raven sierra tundra umber violet willow yonder "
         "zephyr billing ledger orders catalog search payments reports metrics gateway").split()


def jwt(g: Gen, payload: Dict[str, object], alg: str = "HS256", sig_bytes: int = 32) -> str:
    header = {"alg": alg, "typ": "JWT"}
    h = g.b64url(json.dumps(header, separators=(",", ":")).encode())
    p = g.b64url(json.dumps(payload, separators=(",", ":")).encode())
    return f"{h}.{p}.{g.b64url(g.bytes(sig_bytes))}"


def pem_body(g: Gen, nbytes: int) -> str:
    b = base64.b64encode(b"\x30\x82" + g.bytes(nbytes)).decode()
    return "\n".join(b[i:i + 64] for i in range(0, len(b), 64))


def private_key(g: Gen) -> str:
    kind = g.r.choice(["RSA ", "EC ", "DSA ", "OPENSSH ", "ENCRYPTED ", "", "PGP "])
    if kind == "PGP ":
        body = "\n" + pem_body(g, g.r.randint(300, 700)) + "\n=" + g.s(B64, 4)
        return f"-----BEGIN PGP PRIVATE KEY BLOCK-----\n{body}\n-----END PGP PRIVATE KEY BLOCK-----"
    return (f"-----BEGIN {kind}PRIVATE KEY-----\n{pem_body(g, g.r.randint(100, 900))}\n"
            f"-----END {kind}PRIVATE KEY-----")


# A spec is (id, name, generator, mode, also). The generator returns (value, secret): the text
# placed in the carrier and the credential inside it. `name` is the variable the carriers
# assign it to (UPPER_SNAKE); mode "assign" puts `value` after the name, "raw" embeds a
# self-describing snippet (a connection string with its own keywords), "json" a JSON object.
Spec = Tuple[str, str, Callable[[Gen], Tuple[str, str]], str, Tuple[str, ...]]


def same(f: Callable[[Gen], str]) -> Callable[[Gen], Tuple[str, str]]:
    def run(g: Gen) -> Tuple[str, str]:
        v = f(g)
        return v, v
    return run


def pfx(prefix: str, alphabet: str, n: int, suffix: str = "") -> Callable[[Gen], Tuple[str, str]]:
    return same(lambda g: prefix + g.s(alphabet, n) + suffix)


def conn(scheme: str, tail: Callable[[Gen], str], user: bool = True) -> Callable[[Gen], Tuple[str, str]]:
    def run(g: Gen) -> Tuple[str, str]:
        pw = g.password()
        u = (g.r.choice(["app", "svc_" + g.word(), "admin", g.word()]) if user else "")
        return f"{scheme}://{u}:{pw}@{tail(g)}", pw
    return run


def kv_conn(template: str) -> Callable[[Gen], Tuple[str, str]]:
    def run(g: Gen) -> Tuple[str, str]:
        pw = g.password()
        return template.format(pw=pw, host=g.host(), db=g.word(), user=g.word()), pw
    return run


def azure_sas(g: Gen) -> Tuple[str, str]:
    sig = g.b64(32).replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    url = (f"https://{g.word()}{g.s(LOWNUM, 6)}.blob.core.windows.net/{g.word()}/report.csv?"
           f"sv=2022-11-02&ss=b&srt=co&sp=rl&se=2026-0{g.r.randint(1, 9)}-01T00:00:00Z"
           f"&st=2025-01-01T00:00:00Z&spr=https&sig={sig}")
    return url, sig


def azure_ad(g: Gen) -> str:
    return g.s(ALNUM + "_~.-", 3) + g.s(DIGITS, 1) + "Q~" + g.s(ALNUM + "_~.-", 34)


def azure_legacy(g: Gen) -> str:
    while True:
        v = g.s(ALNUM + "_~.-", g.r.randint(34, 40))
        if "Q~" not in v:
            return v


def discord_bot(g: Gen) -> str:
    uid = base64.b64encode(g.digits(18).encode()).decode().rstrip("=")
    return f"{uid}.{g.s(URLSAFE, 6)}.{g.s(URLSAFE, 38)}"


def gcp_sa_json(g: Gen, with_key: bool) -> Tuple[str, str]:
    kid = g.hex(40)
    key = "-----BEGIN PRIVATE KEY-----\\n" + pem_body(g, 600).replace("\n", "\\n") + "\\n-----END PRIVATE KEY-----"
    proj = f"{g.word()}-{g.digits(6)}"
    obj = (f'{{"type": "service_account", "project_id": "{proj}", "private_key_id": "{kid}", '
           f'"private_key": "{key}\\n", "client_email": "deploy@{proj}.iam.gserviceaccount.com"}}')
    return obj, (key if with_key else kid)


def supabase_jwt(g: Gen) -> str:
    return jwt(g, {"iss": "supabase", "ref": g.s(LOWER, 20), "role": "service_role",
                   "iat": 1700000000 + g.r.randrange(10**7), "exp": 2000000000 + g.r.randrange(10**7)})


def k8s_jwt(g: Gen) -> str:
    ns = g.word()
    return jwt(g, {"iss": "kubernetes/serviceaccount", "kubernetes.io/serviceaccount/namespace": ns,
                   "kubernetes.io/serviceaccount/service-account.name": f"{g.word()}-sa",
                   "sub": f"system:serviceaccount:{ns}:{g.word()}-sa"}, alg="RS256", sig_bytes=256)


def plain_jwt(g: Gen) -> str:
    return jwt(g, {"sub": g.digits(10), "name": g.word().title(), "iat": 1700000000 + g.r.randrange(10**7),
                   "scope": g.r.choice(["read", "read write", "admin"])},
               alg=g.r.choice(["HS256", "RS256", "ES256"]), sig_bytes=g.r.choice([32, 64, 256]))


def putty(g: Gen) -> str:
    return ("PuTTY-User-Key-File-2: ssh-rsa\nEncryption: none\nComment: rsa-key-2024" + g.digits(4) +
            "\nPublic-Lines: 6\n" + pem_body(g, 270) + "\nPrivate-Lines: 14\n" + pem_body(g, 640) +
            "\nPrivate-MAC: " + g.hex(40))


def kubeconfig(g: Gen) -> Tuple[str, str]:
    data = base64.b64encode(private_key(g).encode()).decode()
    return (f"users:\n- name: {g.word()}-admin\n  user:\n    client-certificate-data: {g.b64(60)}\n"
            f"    client-key-data: {data}\n", data)


def basic_auth(g: Gen) -> Tuple[str, str]:
    cred = base64.b64encode(f"{g.word()}{g.digits(2)}:{g.password()}".encode()).decode()
    return "Basic " + cred, cred


def bearer(g: Gen) -> Tuple[str, str]:
    t = g.s(ALNUM, 8) + g.s(URLSAFE + ".~", 40) + g.s(ALNUM, 4)
    return "Bearer " + t, t


def b64json(g: Gen, obj: Dict[str, object]) -> str:
    return base64.b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode()


def specs() -> List[Spec]:
    a = "assign"
    out: List[Spec] = [
        # Cloud
        ("aws_access_key_id", "AWS_ACCESS_KEY_ID",
         same(lambda g: g.r.choice(["AKIA", "ASIA"]) + g.s(BASE32, 16)), a, ()),
        ("aws_secret_access_key", "AWS_SECRET_ACCESS_KEY", pfx("", B64, 40), a, ()),
        ("aws_session_token", "AWS_SESSION_TOKEN",
         same(lambda g: "IQoJb3JpZ2luX2Vj" + g.s(B64, g.r.randint(300, 600))), a, ()),
        ("gcp_api_key", "GOOGLE_API_KEY", pfx("AIza", URLSAFE, 35), a, ()),
        ("gcp_service_account_key_id", "GOOGLE_CREDENTIALS", lambda g: gcp_sa_json(g, False), "json",
         ("secret.gcp_service_account_private_key", "secret.private_key")),
        ("gcp_service_account_private_key", "GOOGLE_CREDENTIALS", lambda g: gcp_sa_json(g, True), "json",
         ("secret.gcp_service_account_key_id", "secret.private_key")),
        ("gcp_oauth_client_secret", "GOOGLE_CLIENT_SECRET", pfx("GOCSPX-", URLSAFE, 28), a, ()),
        ("google_oauth_access_token", "GOOGLE_OAUTH_TOKEN",
         same(lambda g: "ya29.a0" + g.s(URLSAFE, g.r.randint(100, 200))), a, ()),
        ("google_oauth_refresh_token", "GOOGLE_REFRESH_TOKEN",
         same(lambda g: "1//0" + g.s(LETTERS, 1) + g.s(URLSAFE, 98)), a, ()),
        ("azure_storage_account_key", "AZURE_STORAGE_CONNECTION_STRING",
         lambda g: (lambda k: (f"DefaultEndpointsProtocol=https;AccountName={g.word()}{g.s(LOWNUM, 6)};"
                               f"AccountKey={k};EndpointSuffix=core.windows.net", k))(g.b64(64)), "raw", ()),
        ("azure_shared_access_key", "SERVICEBUS_CONNECTION_STRING",
         lambda g: (lambda k: (f"Endpoint=sb://{g.word()}-bus.servicebus.windows.net/;"
                               f"SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={k}", k))(g.b64(32)),
         "raw", ()),
        ("azure_sas_token", "BLOB_SAS_URL", azure_sas, "raw", ()),
        ("azure_ad_client_secret", "ENTRA_APP_CLIENT_SECRET", same(azure_ad), a, ()),
        ("azure_client_secret", "AZURE_CLIENT_SECRET", same(azure_legacy), a, ()),
        ("azure_devops_pat", "AZURE_DEVOPS_EXT_PAT",
         same(lambda g: g.s(ALNUM, 76) + "AZDO" + g.s(ALNUM, 4)), a, ()),
        ("azure_devops_legacy_pat", "AZURE_DEVOPS_PAT", pfx("", "abcdefghijklmnopqrstuvwxyz234567", 52), a, ()),
        ("digitalocean_pat", "DIGITALOCEAN_ACCESS_TOKEN", pfx("dop_v1_", HEX, 64), a, ()),
        ("digitalocean_oauth_token", "DO_OAUTH_TOKEN", pfx("doo_v1_", HEX, 64), a, ()),
        ("digitalocean_refresh_token", "DO_REFRESH_TOKEN", pfx("dor_v1_", HEX, 64), a, ()),
        ("alibaba_access_key_id", "ALIBABA_CLOUD_ACCESS_KEY_ID", pfx("LTAI5t", ALNUM, 18), a, ()),
        ("alibaba_access_key_secret", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", pfx("", ALNUM, 30), a, ()),
        ("tencent_cloud_secret_id", "TENCENTCLOUD_SECRET_ID",
         same(lambda g: g.r.choice(["AKID", "IKID"]) + g.s(ALNUM, 32)), a, ()),
        ("ibm_cloud_api_key", "IBMCLOUD_API_KEY", pfx("", URLSAFE, 44), a, ()),
        ("oracle_cloud_auth_token", "OCI_AUTH_TOKEN", pfx("", ALNUM + "()+_.:;#-", 20), a, ()),
        ("heroku_api_key", "HEROKU_API_KEY", same(lambda g: g.uuid()), a, ()),
        ("heroku_api_token", "HEROKU_PLATFORM_TOKEN", pfx("HRKU-AA", URLSAFE, 58), a, ()),
        ("cloudflare_api_token", "CLOUDFLARE_API_TOKEN", pfx("", URLSAFE, 40), a, ()),
        ("cloudflare_global_api_key", "CLOUDFLARE_API_KEY", pfx("", HEX, 37), a, ()),
        ("cloudflare_scannable_token", "CLOUDFLARE_API_TOKEN",
         same(lambda g: f"{g.r.choice(['cfk', 'cfut', 'cfat'])}_{g.s(ALNUM, 40)}{g.s(ALNUM, 8)}"), a, ()),
        ("cloudflare_origin_ca_key", "ORIGIN_CA_KEY",
         same(lambda g: f"v1.0-{g.hex(24)}-{g.hex(146)}"), a, ()),
        ("fastly_api_token", "FASTLY_API_TOKEN", pfx("", URLSAFE, 32), a, ()),
        ("linode_api_token", "LINODE_TOKEN", pfx("", HEX, 64), a, ()),
        ("vultr_api_key", "VULTR_API_KEY", pfx("", UPNUM, 36), a, ()),
        ("scaleway_secret_key", "SCW_SECRET_KEY", same(lambda g: g.uuid()), a, ()),
        ("hetzner_cloud_api_token", "HCLOUD_TOKEN", pfx("", ALNUM, 64), a, ()),
        ("ovh_application_secret", "OVH_APPLICATION_SECRET", pfx("", ALNUM, 32), a, ()),
        ("yandex_cloud_api_key", "YC_API_KEY", pfx("AQVN", URLSAFE, 36), a, ()),
        # Source hosting
        ("github_pat", "GITHUB_TOKEN", pfx("ghp_", ALNUM, 36), a, ()),
        ("github_oauth_token", "GH_OAUTH", pfx("gho_", ALNUM, 36), a, ()),
        ("github_user_to_server_token", "GH_USER_TOKEN", pfx("ghu_", ALNUM, 36), a, ()),
        ("github_server_to_server_token", "GH_INSTALLATION_TOKEN", pfx("ghs_", ALNUM, 36), a, ()),
        ("github_refresh_token", "GH_REFRESH", pfx("ghr_", ALNUM, 76), a, ()),
        ("github_fine_grained_pat", "GH_TOKEN",
         same(lambda g: f"github_pat_11{g.s(UPNUM, 20)}_{g.s(ALNUM, 59)}"), a, ()),
        ("gitlab_pat", "GITLAB_TOKEN", pfx("glpat-", URLSAFE, 20), a, ()),
        ("gitlab_deploy_token", "CI_DEPLOY_PASS", pfx("gldt-", URLSAFE, 20), a, ()),
        ("gitlab_pipeline_trigger_token", "TRIGGER_TOKEN", pfx("glptt-", HEX, 40), a, ()),
        ("gitlab_runner_token", "RUNNER_TOKEN", pfx("glrt-", URLSAFE, 20), a, ()),
        ("gitlab_runner_registration_token", "REGISTRATION_TOKEN", pfx("GR1348941", URLSAFE, 20), a, ()),
        ("gitlab_ci_build_token", "CI_JOB_TOKEN",
         same(lambda g: f"glcbt-{g.hex(2)}_{g.s(URLSAFE, 20)}"), a, ()),
        ("gitlab_scim_token", "GITLAB_SCIM", pfx("glsoat-", URLSAFE, 20), a, ()),
        ("gitlab_oauth_app_secret", "GITLAB_APP_SECRET", pfx("gloas-", URLSAFE, 64), a, ()),
        ("gitlab_incoming_mail_token", "INCOMING_EMAIL_TOKEN", pfx("glimt-", URLSAFE, 25), a, ()),
        ("gitlab_agent_token", "KAS_AGENT_TOKEN", pfx("glagent-", URLSAFE, 50), a, ()),
        ("gitlab_feature_flags_client_token", "UNLEASH_TOKEN", pfx("glffct-", URLSAFE, 20), a, ()),
        ("gitlab_feed_token", "FEED_TOKEN", pfx("glft-", URLSAFE, 20), a, ()),
        ("bitbucket_app_password", "BB_APP_PASSWORD", pfx("ATBB", ALNUM, 32), a, ()),
        ("bitbucket_client_secret", "BITBUCKET_CLIENT_SECRET", pfx("", URLSAFE, 40), a, ()),
        ("gitea_access_token", "GITEA_TOKEN", pfx("", HEX, 40), a, ()),
        # Chat
        ("slack_bot_token", "SLACK_BOT_TOKEN",
         same(lambda g: f"xoxb-{g.digits(11)}-{g.digits(13)}-{g.s(ALNUM, 24)}"), a, ()),
        ("slack_user_token", "SLACK_USER_TOKEN",
         same(lambda g: f"xoxp-{g.digits(11)}-{g.digits(11)}-{g.digits(13)}-{g.hex(32)}"), a, ()),
        ("slack_workspace_access_token", "SLACK_WORKSPACE_TOKEN",
         same(lambda g: f"xoxa-2-{g.digits(11)}-{g.digits(12)}-{g.digits(13)}-{g.hex(64)}"), a, ()),
        ("slack_refresh_token", "SLACK_REFRESH_TOKEN",
         same(lambda g: f"xoxr-{g.digits(11)}-{g.digits(13)}-{g.s(ALNUM, 40)}"), a, ()),
        ("slack_config_access_token", "SLACK_CONFIG_TOKEN",
         same(lambda g: f"xoxe.xoxp-1-{g.s(ALNUM, 160)}"), a, ()),
        ("slack_config_refresh_token", "SLACK_CONFIG_REFRESH",
         same(lambda g: f"xoxe-1-{g.s(ALNUM, 146)}"), a, ()),
        ("slack_app_token", "SLACK_APP_TOKEN",
         same(lambda g: f"xapp-1-A{g.s(UPNUM, 10)}-{g.digits(13)}-{g.hex(64)}"), a, ()),
        ("slack_webhook_url", "SLACK_WEBHOOK_URL",
         same(lambda g: f"https://hooks.slack.com/services/T{g.s(UPNUM, 10)}/B{g.s(UPNUM, 10)}/{g.s(ALNUM, 24)}"),
         a, ()),
        ("discord_bot_token", "DISCORD_BOT_TOKEN", same(discord_bot), a, ()),
        ("discord_webhook_url", "DISCORD_WEBHOOK",
         same(lambda g: f"https://discord.com/api/webhooks/{g.digits(18)}/{g.s(URLSAFE, 68)}"), a, ()),
        ("telegram_bot_token", "TELEGRAM_BOT_TOKEN",
         same(lambda g: f"{g.digits(10)}:AA{g.s(URLSAFE, 33)}"), a, ()),
        ("microsoft_teams_webhook_url", "TEAMS_WEBHOOK",
         same(lambda g: f"https://{g.word()}.webhook.office.com/webhookb2/{g.uuid()}@{g.uuid()}"
                        f"/IncomingWebhook/{g.hex(32)}/{g.uuid()}/V2{g.s(URLSAFE, 40)}"), a, ()),
        ("mattermost_access_token", "MATTERMOST_TOKEN", pfx("", LOWNUM, 26), a, ()),
        ("mattermost_webhook_url", "CHAT_HOOK",
         same(lambda g: f"https://mattermost.{g.word()}-corp.io/hooks/{g.s(LOWNUM, 26)}"), a, ()),
        ("twitter_bearer_token", "TWITTER_BEARER",
         same(lambda g: "AAAAAAAAAAAAAAAAAAAAA" + g.s(UPPER, 1) + g.s(ALNUM, 40) + "%2B" + g.s(ALNUM, 40)), a, ()),
        ("twitter_api_secret", "TWITTER_API_SECRET", pfx("", ALNUM, 50), a, ()),
        ("facebook_access_token", "FB_PAGE_TOKEN", pfx("EAAG", ALNUM, 180), a, ()),
        ("facebook_app_secret", "FACEBOOK_APP_SECRET", pfx("", HEX, 32), a, ()),
        # Payments
        ("stripe_secret_key", "STRIPE_SECRET_KEY", pfx("sk_live_51", ALNUM, 97), a, ()),
        ("stripe_restricted_key", "STRIPE_RESTRICTED", pfx("rk_live_51", ALNUM, 97), a, ()),
        ("stripe_webhook_secret", "STRIPE_WEBHOOK_SECRET", pfx("whsec_", ALNUM, 32), a, ()),
        ("square_access_token", "SQUARE_ACCESS_TOKEN", pfx("EAAA", URLSAFE, 60), a, ()),
        ("square_legacy_access_token", "SQUARE_TOKEN", pfx("sq0atp-", URLSAFE, 22), a, ()),
        ("square_oauth_secret", "SQUARE_APP_SECRET", pfx("sq0csp-", URLSAFE, 43), a, ()),
        ("braintree_access_token", "BRAINTREE_TOKEN",
         same(lambda g: f"access_token$production${g.s(LOWNUM, 16)}${g.hex(32)}"), a, ()),
        ("paypal_client_secret", "PAYPAL_CLIENT_SECRET", pfx("E", URLSAFE, 79), a, ()),
        ("adyen_api_key", "ADYEN_API_KEY", same(lambda g: "AQE" + g.s(B64, 150) + "="), a, ()),
        ("shopify_access_token", "SHOPIFY_ACCESS_TOKEN", pfx("shpat_", HEX, 32), a, ()),
        ("shopify_shared_secret", "SHOPIFY_API_SECRET", pfx("shpss_", HEX, 32), a, ()),
        ("shopify_custom_app_token", "SHOPIFY_CUSTOM_TOKEN", pfx("shpca_", HEX, 32), a, ()),
        ("shopify_private_app_token", "SHOPIFY_PRIVATE_TOKEN", pfx("shppa_", HEX, 32), a, ()),
        ("plaid_access_token", "PLAID_ITEM_TOKEN",
         same(lambda g: f"access-{g.r.choice(['sandbox', 'production', 'development'])}-{g.uuid()}"), a, ()),
        ("plaid_secret", "PLAID_SECRET", pfx("", HEX, 30), a, ()),
        ("razorpay_key_secret", "RAZORPAY_KEY_SECRET", pfx("", ALNUM, 24), a, ()),
        ("razorpay_live_key_id", "RAZORPAY_KEY_ID", pfx("rzp_live_", ALNUM, 14), a, ()),
        ("coinbase_api_secret", "COINBASE_API_SECRET", same(lambda g: g.b64(64)), a, ()),
        ("flutterwave_secret_key", "FLW_SECRET_KEY",
         same(lambda g: f"FLWSECK{g.r.choice(['', '_TEST'])}-{g.hex(32)}-X"), a, ()),
        ("paystack_secret_key", "PAYSTACK_SECRET_KEY", pfx("sk_live_", HEX, 40), a, ("secret.stripe_secret_key",)),
        ("mollie_api_key", "MOLLIE_API_KEY", pfx("live_", ALNUM, 30), a, ()),
        ("lob_api_key", "LOB_API_KEY", pfx("live_", HEX, 35), a, ()),
        ("binance_api_secret", "BINANCE_API_SECRET", pfx("", ALNUM, 64), a, ()),
        ("woocommerce_consumer_secret", "WC_CONSUMER_SECRET", pfx("cs_", HEX, 40), a, ()),
        ("shippo_api_token", "SHIPPO_TOKEN", pfx("shippo_live_", HEX, 40), a, ()),
        ("easypost_api_key", "EASYPOST_API_KEY", pfx("EZAK", ALNUM, 54), a, ()),
        ("duffel_access_token", "DUFFEL_TOKEN", pfx("duffel_live_", URLSAFE, 43), a, ()),
        # AI providers
        ("openai_project_key", "OPENAI_API_KEY",
         same(lambda g: f"sk-proj-{g.s(URLSAFE, 74)}T3BlbkFJ{g.s(URLSAFE, 74)}"), a, ()),
        ("openai_service_account_key", "OPENAI_API_KEY",
         same(lambda g: f"sk-svcacct-{g.s(URLSAFE, 74)}T3BlbkFJ{g.s(URLSAFE, 74)}"), a, ()),
        ("openai_admin_key", "OPENAI_ADMIN_KEY",
         same(lambda g: f"sk-admin-{g.s(URLSAFE, 74)}T3BlbkFJ{g.s(URLSAFE, 74)}"), a, ()),
        ("openai_legacy_key", "OPENAI_KEY", same(lambda g: f"sk-{g.s(ALNUM, 20)}T3BlbkFJ{g.s(ALNUM, 20)}"), a, ()),
        ("anthropic_api_key", "ANTHROPIC_API_KEY", pfx("sk-ant-api03-", URLSAFE, 93, "AA"), a, ()),
        ("anthropic_admin_key", "ANTHROPIC_ADMIN_KEY", pfx("sk-ant-admin01-", URLSAFE, 93, "AA"), a, ()),
        ("huggingface_access_token", "HF_TOKEN", pfx("hf_", LETTERS, 34), a, ()),
        ("huggingface_org_token", "HF_ORG_TOKEN", pfx("api_org_", LETTERS, 34), a, ()),
        ("cohere_api_key", "COHERE_API_KEY", pfx("", ALNUM, 40), a, ()),
        ("groq_api_key", "GROQ_API_KEY", pfx("gsk_", ALNUM, 52), a, ()),
        ("replicate_api_token", "REPLICATE_API_TOKEN", pfx("r8_", ALNUM, 37), a, ()),
        ("perplexity_api_key", "PPLX_KEY", pfx("pplx-", ALNUM, 48), a, ()),
        ("xai_api_key", "XAI_API_KEY", pfx("xai-", ALNUM, 80), a, ()),
        ("mistral_api_key", "MISTRAL_API_KEY", pfx("", ALNUM, 32), a, ()),
        ("together_api_key", "TOGETHER_API_KEY", pfx("tgp_v1_", URLSAFE, 43), a, ()),
        ("together_legacy_api_key", "TOGETHER_API_KEY", pfx("", HEX, 64), a, ()),
        ("fireworks_api_key", "FIREWORKS_API_KEY", pfx("fw_", ALNUM, 24), a, ()),
        ("deepseek_api_key", "DEEPSEEK_API_KEY", pfx("sk-", HEX, 32), a, ()),
        ("openrouter_api_key", "OPENROUTER_API_KEY", pfx("sk-or-v1-", HEX, 64), a, ()),
        ("langsmith_personal_token", "LANGSMITH_API_KEY",
         same(lambda g: f"lsv2_pt_{g.hex(32)}_{g.hex(10)}"), a, ()),
        ("langsmith_service_key", "LANGCHAIN_API_KEY", same(lambda g: f"lsv2_sk_{g.hex(32)}_{g.hex(10)}"), a, ()),
        ("pinecone_api_key", "PINECONE_API_KEY", same(lambda g: f"pcsk_{g.s(ALNUM, 5)}_{g.s(ALNUM, 63)}"), a, ()),
        ("elevenlabs_api_key", "ELEVENLABS_API_KEY", pfx("sk_", HEX, 48), a, ()),
        ("wandb_api_key", "WANDB_API_KEY", pfx("", HEX, 40), a, ()),
        ("langfuse_secret_key", "LANGFUSE_SECRET_KEY", same(lambda g: "sk-lf-" + g.uuid()), a, ()),
        # Databases
        ("postgres_connection_string", "DATABASE_URL",
         conn("postgresql", lambda g: f"{g.host()}:5432/{g.word()}?sslmode=require"), "raw", ()),
        ("mysql_connection_string", "MYSQL_URL", conn("mysql", lambda g: f"{g.host()}:3306/{g.word()}"), "raw", ()),
        ("mongodb_connection_string", "MONGODB_URI",
         conn("mongodb+srv", lambda g: f"cluster0.{g.s(LOWNUM, 5)}.mongodb.net/{g.word()}?retryWrites=true&w=majority"),
         "raw", ()),
        ("redis_connection_string", "REDIS_URL", conn("rediss", lambda g: f"{g.host()}:6380/0", user=False), "raw", ()),
        ("amqp_connection_string", "AMQP_URL", conn("amqps", lambda g: f"{g.host()}/{g.word()}"), "raw", ()),
        ("mssql_connection_string", "SQLSERVER_CONNECTION_STRING",
         kv_conn("Server=tcp:{host},1433;Initial Catalog={db};User ID={user};Password={pw};Encrypt=True;"), "raw", ()),
        ("jdbc_connection_string", "JDBC_URL",
         kv_conn("jdbc:postgresql://{host}:5432/{db}?user={user}&password={pw}&ssl=true"), "raw", ()),
        ("url_basic_auth", "GIT_REMOTE",
         conn("https", lambda g: f"git.{g.word()}-corp.io/{g.word()}/{g.word()}.git"), "raw", ()),
        ("databricks_token", "DATABRICKS_TOKEN", pfx("dapi", HEX, 32), a, ()),
        ("snowflake_password", "SNOWFLAKE_PASSWORD", pfx("", ALNUM + "!@#%^&*()_+=.~-", 16), a, ()),
        ("planetscale_password", "PLANETSCALE_DB_PASSWORD", pfx("pscale_pw_", URLSAFE, 43), a, ()),
        ("planetscale_service_token", "PLANETSCALE_SERVICE_TOKEN", pfx("pscale_tkn_", URLSAFE, 43), a, ()),
        ("planetscale_oauth_token", "PSCALE_OAUTH", pfx("pscale_oauth_", URLSAFE, 43), a, ()),
        ("supabase_access_token", "SUPABASE_ACCESS_TOKEN", pfx("sbp_", HEX, 40), a, ()),
        ("supabase_secret_key", "SUPABASE_SECRET", pfx("sb_secret_", URLSAFE, 31), a, ()),
        ("supabase_service_role_key", "SUPABASE_SERVICE_ROLE_KEY", same(supabase_jwt), a, ("secret.jwt",)),
        ("neon_api_key", "NEON_API_KEY", pfx("", LOWNUM, 64), a, ()),
        ("firebase_cloud_messaging_server_key", "FCM_SERVER_KEY",
         same(lambda g: f"AAAA{g.s(URLSAFE, 7)}:APA91b{g.s(URLSAFE, 134)}"), a, ()),
        ("airtable_pat", "AIRTABLE_TOKEN", same(lambda g: f"pat{g.s(ALNUM, 14)}.{g.hex(64)}"), a, ()),
        ("notion_integration_secret", "NOTION_TOKEN", pfx("secret_", ALNUM, 43), a, ()),
        ("notion_api_token", "NOTION_KEY", same(lambda g: f"ntn_{g.digits(11)}{g.s(ALNUM, 35)}"), a, ()),
        # Keys and standard token formats
        ("private_key", "SSH_PRIVATE_KEY", same(private_key), a, ()),
        ("putty_private_key", "PPK", same(putty), a, ()),
        ("age_secret_key", "SOPS_AGE_KEY", pfx("AGE-SECRET-KEY-1", BECH32, 58), a, ()),
        ("jwt", "SESSION_JWT", same(plain_jwt), a, ()),
        ("kubernetes_service_account_token", "KUBE_TOKEN", same(k8s_jwt), a, ("secret.jwt",)),
        ("kubeconfig_client_key_data", "KUBECONFIG_CONTENT", kubeconfig, "raw", ()),
        ("http_basic_auth", "AUTHORIZATION", basic_auth, a, ()),
        ("http_bearer_token", "AUTHORIZATION", bearer, a, ()),
        # Registries and tooling
        ("pypi_upload_token", "PYPI_API_TOKEN", pfx("pypi-AgEIcHlwaS5vcmc", URLSAFE, 160), a, ()),
        ("npm_access_token", "NPM_TOKEN", pfx("npm_", ALNUM, 36), a, ()),
        ("rubygems_api_key", "RUBYGEMS_TOKEN", pfx("rubygems_", HEX, 48), a, ()),
        ("nuget_api_key", "NUGET_TOKEN", pfx("oy2", LOWNUM, 43), a, ()),
        ("dockerhub_pat", "DOCKERHUB_TOKEN", pfx("dckr_pat_", URLSAFE, 27), a, ()),
        ("dockerhub_org_access_token", "DOCKER_ORG_TOKEN", pfx("dckr_oat_", URLSAFE, 32), a, ()),
        ("crates_io_token", "CARGO_REGISTRY_TOKEN", pfx("cio", ALNUM, 32), a, ()),
        ("clojars_deploy_token", "CLOJARS_DEPLOY_TOKEN", pfx("CLOJARS_", LOWNUM, 60), a, ()),
        ("jfrog_api_key", "ARTIFACTORY_API_KEY", pfx("AKCp", ALNUM, 69), a, ()),
        ("jfrog_reference_token", "JFROG_ACCESS_TOKEN", pfx("cmVmdGtuOjAxOj", ALNUM, 50), a, ()),
        ("terraform_cloud_token", "TF_TOKEN_app_terraform_io",
         same(lambda g: f"{g.s(ALNUM, 14)}.atlasv1.{g.s(URLSAFE, 67)}"), a, ()),
        ("vault_service_token", "VAULT_TOKEN", pfx("hvs.CAESI", URLSAFE, 86), a, ()),
        ("vault_batch_token", "VAULT_BATCH_TOKEN", pfx("hvb.AAAAAQ", URLSAFE, 130), a, ()),
        ("vault_recovery_token", "VAULT_RECOVERY_TOKEN", pfx("hvr.", URLSAFE, 24), a, ()),
        ("doppler_personal_token", "DOPPLER_TOKEN", pfx("dp.pt.", ALNUM, 43), a, ()),
        ("doppler_service_token", "DOPPLER_TOKEN",
         same(lambda g: f"dp.st.{g.r.choice(['', 'dev.', 'prd.'])}{g.s(ALNUM, 43)}"), a, ()),
        ("doppler_cli_token", "DOPPLER_CLI_TOKEN", pfx("dp.ct.", ALNUM, 43), a, ()),
        ("doppler_service_account_token", "DOPPLER_SA_TOKEN", pfx("dp.sa.", ALNUM, 43), a, ()),
        ("onepassword_service_account_token", "OP_SERVICE_ACCOUNT_TOKEN",
         same(lambda g: "ops_" + b64json(g, {"signInAddress": "my.1password.com", "userAuth": {
             "method": "SRPg-4096", "alg": "PBES2g-HS256", "iterations": 650000, "salt": g.s(URLSAFE, 22)},
             "email": f"{g.s(LOWNUM, 13)}@1passwordserviceaccounts.com", "srpX": g.hex(64),
             "muk": {"alg": "A256GCM", "ext": True, "k": g.s(URLSAFE, 43), "kty": "oct"}})), a, ()),
        ("postman_api_key", "POSTMAN_API_KEY", same(lambda g: f"PMAK-{g.hex(24)}-{g.hex(34)}"), a, ()),
        ("pulumi_access_token", "PULUMI_ACCESS_TOKEN", pfx("pul-", HEX, 40), a, ()),
        ("prefect_api_key", "PREFECT_API_KEY", pfx("pnu_", ALNUM, 36), a, ()),
        ("harness_pat", "HARNESS_TOKEN",
         same(lambda g: f"pat.{g.s(URLSAFE, 22)}.{g.hex(24)}.{g.s(ALNUM, 20)}"), a, ()),
        ("octopus_deploy_api_key", "OCTOPUS_CLI_API_KEY", pfx("API-", UPNUM, 30), a, ()),
        ("circleci_pat", "CIRCLECI_TOKEN",
         same(lambda g: f"CCIP{g.r.choice(['AT', 'RJ'])}_{g.s(B58, 22)}_{g.hex(40)}"), a, ()),
        ("buildkite_api_token", "BUILDKITE_API_TOKEN", pfx("bkua_", HEX, 40), a, ()),
        ("sonarqube_token", "SONAR_TOKEN", same(lambda g: f"sq{g.r.choice('upa')}_{g.hex(40)}"), a, ()),
        ("sourcegraph_access_token", "SRC_ACCESS_TOKEN",
         same(lambda g: f"sgp_{g.r.choice(['', g.hex(16) + '_'])}{g.hex(40)}"), a, ()),
        ("tailscale_key", "TS_AUTHKEY",
         same(lambda g: f"tskey-{g.r.choice(['auth', 'api', 'client'])}-k{g.s(ALNUM, 11)}-{g.s(ALNUM, 33)}"), a, ()),
        ("snyk_api_token", "SNYK_TOKEN", same(lambda g: g.uuid()), a, ()),
        ("ngrok_authtoken", "NGROK_AUTHTOKEN", same(lambda g: f"2{g.s(ALNUM, 26)}_{g.s(ALNUM, 21)}"), a, ()),
        ("scalingo_api_token", "SCALINGO_API_TOKEN", pfx("tk-us-", URLSAFE, 48), a, ()),
        ("infracost_api_key", "INFRACOST_API_KEY", pfx("ico-", ALNUM, 32), a, ()),
        ("readme_api_key", "README_API_KEY", pfx("rdme_", LOWNUM, 70), a, ()),
        ("frameio_api_token", "FRAMEIO_TOKEN", pfx("fio-u-", URLSAFE, 64), a, ()),
        ("adafruit_io_key", "ADAFRUIT_IO_KEY", pfx("aio_", ALNUM, 28), a, ()),
        # Email and SMS
        ("sendgrid_api_key", "SENDGRID_API_KEY", same(lambda g: f"SG.{g.s(URLSAFE, 22)}.{g.s(URLSAFE, 43)}"), a, ()),
        ("mailgun_api_key", "MAILGUN_KEY", pfx("key-", HEX, 32), a, ()),
        ("mailgun_private_key", "MAILGUN_API_KEY", same(lambda g: f"{g.hex(32)}-{g.hex(8)}-{g.hex(8)}"), a, ()),
        ("mailchimp_api_key", "MAILCHIMP_API_KEY", same(lambda g: f"{g.hex(32)}-us{g.r.randint(1, 21)}"), a, ()),
        ("brevo_api_key", "BREVO_API_KEY", same(lambda g: f"xkeysib-{g.hex(64)}-{g.s(ALNUM, 16)}"), a, ()),
        ("brevo_smtp_key", "SMTP_KEY", same(lambda g: f"xsmtpsib-{g.hex(64)}-{g.s(ALNUM, 16)}"), a, ()),
        ("postmark_server_token", "POSTMARK_SERVER_TOKEN", same(lambda g: g.uuid()), a, ()),
        ("sparkpost_api_key", "SPARKPOST_API_KEY", pfx("", HEX, 40), a, ()),
        ("mailjet_secret_key", "MAILJET_SECRET_KEY", pfx("", HEX, 32), a, ()),
        ("twilio_api_key", "TWILIO_API_KEY_SID", pfx("SK", HEX, 32), a, ()),
        ("twilio_auth_token", "TWILIO_AUTH_TOKEN", pfx("", HEX, 32), a, ()),
        ("vonage_api_secret", "VONAGE_API_SECRET", pfx("", ALNUM, 16), a, ()),
        ("plivo_auth_token", "PLIVO_AUTH_TOKEN", pfx("", ALNUM, 40), a, ()),
        # Observability
        ("sentry_org_token", "SENTRY_AUTH_TOKEN",
         same(lambda g: "sntrys_" + b64json(g, {"iat": 1700000000 + g.r.randrange(10**7), "url": "https://sentry.io",
                                                 "region_url": "https://us.sentry.io", "org": g.word()})
              + "_" + g.s(B64, 43)), a, ()),
        ("sentry_user_token", "SENTRY_TOKEN", pfx("sntryu_", HEX, 64), a, ()),
        ("datadog_api_key", "DD_API_KEY", pfx("", HEX, 32), a, ()),
        ("datadog_app_key", "DATADOG_APP_KEY", pfx("", HEX, 40), a, ()),
        ("newrelic_user_api_key", "NEW_RELIC_API_KEY", pfx("NRAK-", UPNUM, 27), a, ()),
        ("newrelic_insert_key", "NEW_RELIC_INSERT_KEY", pfx("NRII-", URLSAFE, 32), a, ()),
        ("newrelic_license_key", "NEW_RELIC_LICENSE_KEY", pfx("", HEX, 36, "NRAL"), a, ()),
        ("grafana_cloud_token", "GRAFANA_CLOUD_TOKEN",
         same(lambda g: "glc_" + b64json(g, {"o": g.digits(6), "n": f"{g.word()}-token", "k": g.s(ALNUM, 24),
                                              "m": {"r": "prod-us-east-0"}})), a, ()),
        ("grafana_service_account_token", "GRAFANA_SA_TOKEN", same(lambda g: f"glsa_{g.s(ALNUM, 32)}_{g.hex(8)}"), a, ()),
        ("grafana_api_key", "GRAFANA_API_KEY",
         same(lambda g: b64json(g, {"k": g.s(ALNUM, 32), "n": g.word(), "id": g.r.randint(1, 99)})), a, ()),
        ("dynatrace_api_token", "DT_API_TOKEN", same(lambda g: f"dt0c01.{g.s(UPNUM, 24)}.{g.s(UPNUM, 64)}"), a, ()),
        ("pagerduty_api_key", "PAGERDUTY_TOKEN", same(lambda g: "u+" + g.s(URLSAFE, 18)), a, ()),
        ("honeycomb_api_key", "HONEYCOMB_API_KEY",
         same(lambda g: g.r.choice([g.s(ALNUM, 22), "hcaik_" + g.s(LOWNUM, 58)])), a, ()),
        ("splunk_hec_token", "SPLUNK_HEC_TOKEN", same(lambda g: g.uuid()), a, ()),
        ("sumologic_access_key", "SUMO_ACCESS_KEY", pfx("", ALNUM, 64), a, ()),
        ("opsgenie_api_key", "OPSGENIE_API_KEY", same(lambda g: g.uuid()), a, ()),
        # Collaboration and SaaS
        ("atlassian_api_token", "JIRA_API_TOKEN",
         same(lambda g: f"ATATT3xFfGF0{g.s(URLSAFE, 170)}={g.hex(8).upper()}"), a, ()),
        ("linear_api_key", "LINEAR_API_KEY", pfx("lin_api_", ALNUM, 40), a, ()),
        ("asana_pat", "ASANA_ACCESS_TOKEN",
         same(lambda g: f"2/{g.digits(16)}/{g.digits(16)}:{g.hex(32)}"), a, ()),
        ("figma_pat", "FIGMA_TOKEN", pfx("figd_", URLSAFE, 40), a, ()),
        ("okta_api_token", "OKTA_API_TOKEN", pfx("00", URLSAFE, 40), a, ()),
        ("auth0_client_secret", "AUTH0_CLIENT_SECRET", pfx("", URLSAFE, 64), a, ()),
        ("contentful_pat", "CONTENTFUL_MANAGEMENT_TOKEN", pfx("CFPAT-", URLSAFE, 43), a, ()),
        ("netlify_pat", "NETLIFY_AUTH_TOKEN", pfx("nfp_", ALNUM, 36), a, ()),
        ("vercel_token", "VERCEL_TOKEN", pfx("", ALNUM, 24), a, ()),
        ("flyio_token", "FLY_ACCESS_TOKEN", pfx("fo1_", URLSAFE, 43), a, ()),
        ("flyio_macaroon", "FLY_API_TOKEN", same(lambda g: "FlyV1 fm2_" + g.b64(150).rstrip("=")), a, ()),
        ("render_api_key", "RENDER_API_KEY", pfx("rnd_", ALNUM, 32), a, ()),
        ("railway_token", "RAILWAY_TOKEN", same(lambda g: g.uuid()), a, ()),
        ("mapbox_secret_token", "MAPBOX_SECRET_TOKEN",
         same(lambda g: "sk." + g.b64url(json.dumps({"u": g.word(), "a": "cl" + g.s(LOWNUM, 23)},
                                                     separators=(",", ":")).encode()) + "." + g.s(URLSAFE, 22)), a, ()),
        ("algolia_admin_key", "ALGOLIA_ADMIN_KEY", pfx("", HEX, 32), a, ()),
        ("intercom_access_token", "INTERCOM_ACCESS_TOKEN",
         same(lambda g: base64.b64encode(f"tok:{g.uuid()}:{g.digits(8)}:0".encode()).decode()), a, ()),
        ("zendesk_api_token", "ZENDESK_API_TOKEN", pfx("", ALNUM, 40), a, ()),
        ("hubspot_private_app_token", "HUBSPOT_ACCESS_TOKEN",
         same(lambda g: f"pat-{g.r.choice(['na1', 'eu1', 'na2'])}-{g.uuid()}"), a, ()),
        ("salesforce_access_token", "SF_ACCESS_TOKEN",
         same(lambda g: f"00D{g.s(ALNUM, 15)}!AQ{g.s(ALNUM + '._', 94)}"), a, ()),
        ("dropbox_access_token", "DROPBOX_ACCESS_TOKEN", pfx("sl.B", URLSAFE, 137), a, ()),
        ("box_developer_token", "BOX_DEVELOPER_TOKEN", pfx("", ALNUM, 32), a, ()),
        ("trello_api_token", "TRELLO_TOKEN", same(lambda g: f"ATTA{g.hex(64)}{g.hex(8).upper()}"), a, ()),
        ("clickup_api_token", "CLICKUP_API_TOKEN", same(lambda g: f"pk_{g.digits(8)}_{g.s(UPNUM, 32)}"), a, ()),
        ("typeform_pat", "TYPEFORM_TOKEN", same(lambda g: f"tfp_{g.s(URLSAFE, 44)}_{g.s(ALNUM, 14)}"), a, ()),
        ("launchdarkly_access_token", "LAUNCHDARKLY_ACCESS_TOKEN", same(lambda g: "api-" + g.uuid()), a, ()),
        ("sanity_api_token", "SANITY_API_TOKEN", pfx("sk", ALNUM, 180), a, ()),
        ("cloudinary_url", "CLOUDINARY_URL",
         lambda g: (lambda s: (f"cloudinary://{g.digits(15)}:{s}@{g.word()}-{g.s(LOWNUM, 4)}", s))(g.s(URLSAFE, 27)),
         "raw", ()),
        ("ably_api_key", "ABLY_API_KEY",
         same(lambda g: f"{g.s(URLSAFE, 6)}.{g.s(URLSAFE, 6)}:{g.s(URLSAFE, 43)}"), a, ()),
        ("pusher_app_secret", "PUSHER_APP_SECRET", pfx("", HEX, 20), a, ()),
        ("generic_assignment", "", generic, a, ()),
    ]
    return [(f"secret.{i}", n, f, m, also) for (i, n, f, m, also) in out]


GENERIC_NAMES = ["DB_PASSWORD", "client_secret", "api_key", "SESSION_SECRET", "auth_token", "access_token",
                 "jwt_secret", "smtp_password", "APP_SECRET", "internal_api_key", "private_key_passphrase"]


def generic(g: Gen) -> Tuple[str, str]:
    v = g.s(ALNUM, 4) + g.s(ALNUM + "+/_-", g.r.randint(20, 40)) + g.s(ALNUM, 4)
    return v, v


def is_placeholder(s: str) -> bool:
    low = s.lower()
    return any(w in low for w in PLACEHOLDER_WORDS) or len(set(s)) <= 1


# ---- carriers ---------------------------------------------------------------------------

def snake(name: str) -> str:
    return name.lower()


def camel(name: str) -> str:
    parts = name.lower().split("_")
    return parts[0] + "".join(p.title() for p in parts[1:])


def header_name(name: str) -> str:
    if name.upper() == "AUTHORIZATION":
        return "Authorization"
    return "X-" + "-".join(p.title() for p in name.lower().split("_"))


TIMESTAMPS = ["2025-03-14T09:26:53Z", "2025-07-01 12:00:03,114", "Jan 12 03:14:07", "2024-11-30T23:59:59.999+01:00"]


def carriers(g: Gen, name: str, value: str, mode: str) -> List[str]:
    r = g.r
    ts = r.choice(TIMESTAMPS)
    if mode == "json":
        return [
            '{"credentials": ' + value + ', "region": "' + r.choice(["us-east1", "europe-west4"]) + '"}',
            f"{ts} DEBUG loaded credentials {value}",
            f"{name}='{value}'",
            f"{snake(name)}: '{value}'",
            f"export {name}='{value}'",
            f"{header_name(name)}: {value}",
            f"Here is the service account file you asked for: {value} -- please keep it private.",
            f"{snake(name)} = json.loads('{value}')",
        ]
    if mode == "raw":
        return [
            json.dumps({snake(name): value, "pool_size": r.randint(2, 20)}),
            f"{ts} INFO worker[{r.randint(100, 9999)}] connecting with {snake(name)}={value}",
            f"{name}={value}",
            f"  {snake(name)}: \"{value}\"",
            f"export {name}=\"{value}\"",
            f"{header_name(name)}: {value}",
            r.choice(["The app kept failing until I set ", "For the record, staging uses ", "Try again with "])
            + f"{value} as the connection setting.",
            r.choice([f'{snake(name)} = "{value}"', f'const {camel(name)} = "{value}";']),
        ]
    prose = r.choice([
        f"Heads up: I accidentally pasted {snake(name)}={value} into the ticket, please rotate it.",
        f"Can you check why the deploy fails? I set {name}: {value} in the settings page.",
        f"The old config had {camel(name)} = {value} which is still valid I think.",
        f"FYI {name}={value} (expires next month).",
    ])
    return [
        json.dumps({snake(name): value, "env": r.choice(["production", "staging"]), "retries": r.randint(1, 5)}),
        f"{ts} INFO config loaded {snake(name)}={value} pid={r.randint(100, 65000)}",
        f"{name}={value}",
        f"{snake(name)}: {value}",
        f'export {name}="{value}"',
        f"{header_name(name)}: {value}",
        prose,
        r.choice([f'{snake(name)} = "{value}"', f'const {camel(name)} = "{value}";', f'{name} = "{value}"']),
    ]


def positives(g: Gen, per_rule: int) -> List[dict]:
    rows = []
    for rid, name, make, mode, also in specs():
        made = 0
        while made < per_rule:
            value, secret = make(g)
            if is_placeholder(secret):
                continue
            n = name or g.r.choice(GENERIC_NAMES)
            for text in carriers(g, n, value, mode):
                if made >= per_rule:
                    break
                rows.append({"text": text, "labels": [rid, *also], "source": SOURCE})
                made += 1
    return rows


# ---- hard negatives ---------------------------------------------------------------------

PLACEHOLDERS = [
    "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "aws_access_key_id = AKIAIOSFODNN7EXAMPLE",
    "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "OPENAI_API_KEY=sk-...",
    "export OPENAI_API_KEY=\"sk-proj-...\"",
    "postgres://user:<password>@host/db",
    "DATABASE_URL=postgresql://USER:<PASSWORD>@localhost:5432/app",
    "password = \"${DB_PASSWORD}\"",
    "api_key: YOUR_API_KEY_HERE",
    "STRIPE_SECRET_KEY=sk_live_XXXXXXXXXXXXXXXXXXXXXXXX",
    "SLACK_BOT_TOKEN=xoxb-your-bot-token",
    "SLACK_WEBHOOK_URL=https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
    "Authorization: Bearer <token>",
    "Authorization: Bearer $ACCESS_TOKEN",
    "curl -H \"Authorization: Bearer ${GITHUB_TOKEN}\" https://api.github.com/user",
    "password: changeme",
    "secret: REDACTED",
    "client_secret = \"<client-secret>\"",
    "api_key = os.environ[\"OPENAI_API_KEY\"]",
    "const apiKey = process.env.STRIPE_SECRET_KEY;",
    "-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----",
    "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC...example...\n-----END PRIVATE KEY-----",
    "HEROKU_API_KEY=00000000-0000-0000-0000-000000000000",
    "token: dummy-token-for-tests",
    "auth_token = \"sample_auth_token_value_1234\"",
    "DISCORD_TOKEN=your-discord-bot-token",
    "hf_token: hf_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "ANTHROPIC_API_KEY=sk-ant-api03-...",
    "mongodb+srv://<username>:<password>@cluster0.mongodb.net/",
    "redis://:${REDIS_PASSWORD}@redis:6379/0",
    "password=********",
    "secret_key = 'placeholder-secret-key-change-me'",
    "NPM_TOKEN=npm_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
    "AZURE_STORAGE_CONNECTION_STRING=DefaultEndpointsProtocol=https;AccountName=devstoreaccount1;AccountKey=<key>",
    "sk_live_************************",
]

PROSE = [
    "The quarterly report shows steady growth in the northern region, driven by new retail partners.",
    "Please remember to water the plants on the balcony while I am away next week.",
    "We walked along the river until the light faded and the city lamps came on one by one.",
    "Our team retrospective identified flaky integration tests as the main source of delays.",
    "The recipe calls for two cups of flour, a pinch of salt and three eggs beaten lightly.",
    "Rotate credentials regularly and store them in a secrets manager rather than in source control.",
    "The API key should be passed in the request header; see the authentication guide for details.",
    "Set the password policy to require at least twelve characters and a mix of symbols.",
    "Token expiry is configurable; the default access token lifetime is one hour.",
    "The secret to a good sourdough is patience and a lively starter.",
    "She explained that the private key never leaves the hardware security module.",
    "Kubernetes service accounts get a projected token mounted into each pod by default.",
]


def negatives(g: Gen, count: int) -> List[dict]:
    r = g.r
    makers: List[Callable[[], str]] = [
        lambda: f"request_id={g.uuid()} status=200 latency_ms={r.randint(3, 900)}",
        lambda: f'{{"id": "{g.uuid()}", "type": "order", "total": {r.randint(1, 999)}.{r.randint(10, 99)}}}',
        lambda: f"commit {g.hex(40)}\nAuthor: {g.word().title()} <{g.word()}@acme-corp.io>",
        lambda: f"Merge pull request #{r.randint(10, 9999)} from acme/{g.word()} ({g.hex(7)})",
        lambda: f"git checkout {g.hex(40)}",
        lambda: f"sha256:{g.hex(64)}",
        lambda: f"{g.hex(64)}  {g.word()}-{r.randint(1, 9)}.{r.randint(0, 20)}.tar.gz",
        lambda: f"md5sum: {g.hex(32)}",
        lambda: f"ETag: \"{g.hex(32)}\"",
        lambda: f"sha1 {g.hex(40)}",
        lambda: f"image: registry.acme-corp.io/{g.word()}@sha256:{g.hex(64)}",
        lambda: f'"integrity": "sha512-{g.b64(64)}"',
        lambda: "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAA" + g.b64(r.randint(200, 600)),
        lambda: f'<img src="data:image/jpeg;base64,/9j/4AAQSkZJRgABAQ{g.b64(r.randint(150, 400))}">',
        lambda: f"version {r.randint(0, 9)}.{r.randint(0, 40)}.{r.randint(0, 99)}",
        lambda: f"{g.word()}=={r.randint(0, 5)}.{r.randint(0, 30)}.{r.randint(0, 9)}",
        lambda: f"v{r.randint(1, 3)}.{r.randint(0, 9)}.{r.randint(0, 9)}-rc.{r.randint(1, 5)}+build.{g.hex(7)}",
        lambda: r.choice(PLACEHOLDERS),
        lambda: r.choice(PROSE),
        lambda: " ".join(r.choice(PROSE).split()[: r.randint(5, 12)]) + ".",
        lambda: f"https://docs.{g.word()}.io/guides/{g.word()}/{g.word()}?lang=en#section-{r.randint(1, 9)}",
        lambda: f"https://github.com/acme/{g.word()}/blob/main/src/{g.word()}.rs#L{r.randint(1, 900)}",
        lambda: f"https://{g.word()}@git.acme-corp.io/{g.word()}.git",
        lambda: f"postgres://{g.word()}@{g.host()}:5432/{g.word()}",
        lambda: f"DATABASE_URL=postgresql://{g.host()}:5432/{g.word()}?sslmode=disable",
        lambda: "postgres://postgres:postgres@localhost:5432/postgres",
        lambda: f"mongodb+srv://cluster0.{g.s(LOWNUM, 5)}.mongodb.net/{g.word()}?retryWrites=true",
        lambda: f"redis://{g.host()}:6379/{r.randint(0, 15)}",
        lambda: f"mysql://root@localhost:3306/{g.word()}",
        lambda: f"amqp://{g.word()}@rabbitmq:5672/",
        lambda: f"Server=tcp:{g.host()},1433;Database={g.word()};Integrated Security=true;",
        lambda: f"jdbc:postgresql://{g.host()}:5432/{g.word()}?user={g.word()}&ssl=true",
        lambda: "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxMjM0In0.",
        lambda: f"eyJ{g.s(ALNUM, 20)}",
        lambda: f"{g.b64url(g.word().encode())}.{g.b64url(g.word().encode())}.{g.b64url(g.word().encode())}",
        lambda: "header.payload.signature",
        lambda: f"arn:aws:iam::{g.digits(12)}:role/{g.word()}-{g.word()}",
        lambda: f"s3://{g.word()}-{g.word()}-{g.digits(4)}/exports/{g.uuid()}.parquet",
        lambda: f"color: #{g.hex(6)}; background: #{g.hex(6)};",
        lambda: f"mac {':'.join(g.hex(2) for _ in range(6))} ip 10.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}",
        lambda: f"{g.word()}_{g.word()}_{g.word()}_{g.word()} = {r.randint(0, 10**6)}",
        lambda: f"secret_name: {g.word()}-{g.word()}-credentials",
        lambda: f"api_key_id = {r.randint(1, 99999)}",
        lambda: f"password_min_length: {r.randint(8, 20)}",
        lambda: f"token_type: bearer\nexpires_in: {r.randint(600, 86400)}",
        lambda: f"cache key: {g.word()}:{g.word()}:{r.randint(1, 10**9)}",
        lambda: f"k8s pod {g.word()}-{g.s(LOWNUM, 10)}-{g.s(LOWNUM, 5)} restarted",
        lambda: f"base64 of hello: aGVsbG8gd29ybGQ=, of {g.word()}: {base64.b64encode(g.word().encode()).decode()}",
    ]
    rows = []
    for i in range(count):
        rows.append({"text": makers[i % len(makers)](), "labels": [], "source": SOURCE})
    return rows


def corpus(seed: int = 7, per_rule: int = 8, n_negatives: int = 700) -> List[dict]:
    g = Gen(random.Random(seed))
    rows = positives(g, per_rule) + negatives(g, n_negatives)
    g.r.shuffle(rows)
    return rows


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--per-rule", type=int, default=8, help="positive lines per credential format (>= 8)")
    ap.add_argument("--negatives", type=int, default=700, help="hard-negative lines")
    args = ap.parse_args(argv)
    for row in corpus(args.seed, max(8, args.per_rule), args.negatives):
        sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
