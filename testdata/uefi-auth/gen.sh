#!/bin/sh
# Makes the authenticated-variable vectors lib/uefi-vars' host tests read, with the tools a
# user enrolling Secure Boot keys uses: openssl for the keys, efitools for the signature lists
# and the EFI_VARIABLE_AUTHENTICATION_2 files. Rerun to regenerate (new keys each time).
set -eu
cd "$(dirname "$0")"
OWNER=c47e7a11-ca7e-4a5b-9e3f-0f1e2d3c4b5a
mk() {
    openssl req -new -x509 -newkey rsa:2048 -nodes -sha256 -days 36500 \
        -subj "/CN=Catena test $1/" -keyout "$1.key" -out "$1.crt" 2>/dev/null
    cert-to-efi-sig-list -g "$OWNER" "$1.crt" "$1.esl"
}
sign() { # var esl key out timestamp [extra flags]
    var=$1 esl=$2 key=$3 out=$4 t=$5
    shift 5
    sign-efi-sig-list "$@" -g "$OWNER" -t "$t" -k "$key.key" -c "$key.crt" "$var" "$esl" "$out" >/dev/null
}
mk PK
mk KEK
mk db
mk db2
mk wrong
mk revoked
T0="2026-01-01 00:00:00"
T1="2026-01-02 00:00:00"
T2="2026-01-03 00:00:00"
sign PK PK.esl PK PK.auth "$T1"
sign KEK KEK.esl PK KEK.auth "$T1"
sign db db.esl KEK db.auth "$T1"
# dbx: the certificate `revoked`, revoked by KEK.
sign dbx revoked.esl KEK dbx.auth "$T1"
# Refused in user mode: db signed by a key nobody trusts; a replayed older db (the unsigned
# one is made by the tests: an authentication header without a signature).
sign db db2.esl wrong db-wrong-key.auth "$T2"
sign db db2.esl KEK db-older.auth "$T0"
# Accepted: db replaced with db2 later; db2 appended (an older time is fine for an append);
# db signed by PK (PK may sign db too); the PK deleted (empty payload) by itself.
sign db db2.esl KEK db-newer.auth "$T2"
sign db db2.esl KEK db-append.auth "$T0" -a
sign db db2.esl PK db-by-pk.auth "$T2"
: >empty.esl
sign PK empty.esl PK PK-delete.auth "$T2"
# db2 signed by KEK with openssl's CMS signer instead: signed attributes (messageDigest) and a
# ContentInfo wrapper, as a signing service outside efitools produces them.
sign-efi-sig-list -g "$OWNER" -t "$T2" -o db db2.esl db-attrs.bundle >/dev/null
openssl smime -sign -binary -md sha256 -in db-attrs.bundle -signer KEK.crt -inkey KEK.key \
    -outform DER -out db-attrs.p7
sign-efi-sig-list -g "$OWNER" -t "$T2" -i db-attrs.p7 db db2.esl db-attrs.auth >/dev/null
rm -f ./*.key empty.esl db-attrs.bundle db-attrs.p7
chmod 644 ./*.auth ./*.esl ./*.crt
