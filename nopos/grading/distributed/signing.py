"""Who may give a worker a task: only the holder of the grader's key.

The broker's password keeps strangers out of the queue; it does not stop one who
has it (a leaked worker config, a learner on a shared host) from enqueuing a
task. So every task is signed (Celery's `auth` serializer: an X.509 certificate
and its key) and a worker accepts only messages signed by a certificate in its
`trusted/` folder, which holds the grader's alone. Every other serializer is
switched off: an unsigned message is never decoded.

    python -m nopos.grading.distributed.signing DIR NAME   # DIR/NAME.key, DIR/NAME.pem
"""
import datetime
import sys
from pathlib import Path

SERIALIZER = "auth"


def make_key(folder, name, days=400):
    """A private key and a self-signed certificate for `name` (the grader, or a worker)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"nopos-{name}")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .sign(key, hashes.SHA256()))
    key_path, cert_path = folder / f"{name}.key", folder / f"{name}.pem"
    key_path.touch(mode=0o600)
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def secure(app, folder, name):
    """Sign what `app` sends with folder/name.key; accept only what a certificate in
    folder/trusted/ signed."""
    folder = Path(folder)
    trusted = folder / "trusted"
    if not any(trusted.glob("*.pem")):
        raise SystemExit(f"no trusted certificate in {trusted}: copy the grader's .pem there")
    app.conf.update(
        security_key=str(folder / f"{name}.key"),
        security_certificate=str(folder / f"{name}.pem"),
        security_cert_store=str(trusted / "*.pem"),
        security_digest="sha256",
        task_serializer=SERIALIZER, event_serializer=SERIALIZER,
        accept_content=[SERIALIZER], result_accept_content=[SERIALIZER])
    # json stays registered for the signed body inside `auth`; accept_content above
    # is what refuses an unsigned json (or pickle) message outright
    app.setup_security(allowed_serializers=["json"], serializer="json")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m nopos.grading.distributed.signing DIR NAME")
    for path in make_key(*sys.argv[1:]):
        print(path)
