"""A throwaway certificate authority and a server certificate for the mock over HTTPS.

Keys are generated at test time into a temporary directory, never committed: a CA certificate (what the
client trusts: ``SSL_CERT_FILE``, ``curl --cacert``, ``httpx.Client(verify=...)``) and a server
certificate it signed for ``127.0.0.1``, ``::1`` and ``localhost`` (what ``--tls CERT KEY`` serves).
Uses the ``cryptography`` package when installed, else the ``openssl`` command.

    python -m testdata.mock_llm.tls DIR       # writes DIR/ca.pem, DIR/server.pem, DIR/server.key
"""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple


class TlsFiles(NamedTuple):
    ca: Path  # CA certificate (PEM): give it to the client
    cert: Path  # server certificate (PEM)
    key: Path  # server private key (PEM, unencrypted)


def make_tls_files(directory: str | Path) -> TlsFiles:
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(d / "ca.pem", d / "server.pem", d / "server.key")
    try:
        import cryptography  # noqa: F401
    except ImportError:
        _with_openssl(files)
    else:
        _with_cryptography(files)
    return files


def _with_cryptography(f: TlsFiles) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=2)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "heron test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    san = x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                       x509.IPAddress(ipaddress.ip_address("::1"))])
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(san, critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    f.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    f.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    f.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))


def _with_openssl(f: TlsFiles) -> None:
    exe = shutil.which("openssl")
    if exe is None:
        raise RuntimeError("neither the cryptography package nor the openssl command is available")
    d = f.ca.parent
    ca_key = d / "ca.key"

    def run(*args: str) -> None:
        subprocess.run([exe, *args], check=True, capture_output=True, timeout=60)

    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
        "-keyout", str(ca_key), "-out", str(f.ca), "-subj", "/CN=heron test CA",
        "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    csr = d / "server.csr"
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(f.key),
        "-out", str(csr), "-subj", "/CN=localhost")
    ext = d / "server.ext"
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", str(csr), "-CA", str(f.ca), "-CAkey", str(ca_key), "-CAcreateserial",
        "-days", "2", "-out", str(f.cert), "-extfile", str(ext))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    print(" ".join(str(p) for p in make_tls_files(sys.argv[1])))
