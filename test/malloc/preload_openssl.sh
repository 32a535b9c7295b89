#!/usr/bin/env bash
# openssl (libcrypto/libssl allocate through CRYPTO_malloc, i.e. malloc, realloc and free): AES
# and ChaCha20 encryption with a fixed key, digests, RSA PKCS#1 v1.5 signatures (deterministic)
# with a key made beforehand, key conversions, certificate checks, TLS 1.3 and TLS 1.2 sessions
# between s_server and s_client on the loopback, and `openssl speed` with two forked workers (its
# numbers are timing: only its exit status and what it reported are compared). Output and exit
# status compared with a run without the preload.
source "$(dirname "$0")/preload_common.sh"
need openssl md5sum awk split timeout
LINES=${HK_OPENSSL_LINES:-100000}
awk -v n="$LINES" 'BEGIN { srand(7); for (i = 0; i < n; i++) printf "%06d %s %.6f\n", i, substr("the quick brown fox jumps over the lazy dog", 1 + i % 30, 10), rand() }' > "$TMP/input.txt"
# The key and the certificate are random: made once, outside the two runs.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$TMP/rsa.pem" 2>/dev/null || fail "genpkey failed"
openssl req -x509 -new -key "$TMP/rsa.pem" -subj /CN=localhost -days 2 -set_serial 42 -out "$TMP/cert.pem" 2>/dev/null || fail "req failed"
echo "$name: input $(du -m "$TMP/input.txt" | cut -f1) MiB"
cat > "$TMP/work.sh" <<EOS
in=$TMP/input.txt key=$TMP/rsa.pem cert=$TMP/cert.pem
K=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f IV=0f0e0d0c0b0a09080706050403020100
openssl enc -aes-256-cbc -K \$K -iv \$IV -in "\$in" -out e.bin && md5sum < e.bin
openssl enc -d -aes-256-cbc -K \$K -iv \$IV -in e.bin | md5sum
openssl enc -chacha20 -K \$K -iv \$IV -in "\$in" | md5sum
openssl dgst -sha256 -r "\$in" | cut -d' ' -f1
openssl dgst -sha3-512 -r "\$in" | cut -d' ' -f1
openssl dgst -blake2b512 -r "\$in" | cut -d' ' -f1
split -b 200000 "\$in" part.
for p in part.??; do openssl dgst -sha256 -sign "\$key" -out "\$p.sig" "\$p" && md5sum < "\$p.sig"; done | md5sum
for p in part.??; do openssl dgst -sha256 -prverify "\$key" -signature "\$p.sig" "\$p"; done | sort | uniq -c
openssl pkey -in "\$key" -pubout | md5sum
openssl pkcs8 -topk8 -nocrypt -in "\$key" -outform DER | openssl pkey -inform DER -outform PEM | md5sum
openssl x509 -in "\$cert" -noout -subject -issuer -serial
openssl verify -CAfile "\$cert" "\$cert"
openssl asn1parse -in "\$cert" | wc -l
openssl base64 -in e.bin | openssl base64 -d | md5sum
# s_server -rev: each line sent back reversed, the connection closed at a line "CLOSE".
port=\$((20000 + \$\$ % 20000))
for proto in -tls1_3 -tls1_2; do
  timeout 60 openssl s_server -accept 127.0.0.1:\$port -key "\$key" -cert "\$cert" -naccept 3 -rev -quiet \$proto > srv.out 2>&1 &
  spid=\$!
  for i in \$(seq 100); do echo CLOSE | timeout 10 openssl s_client -connect 127.0.0.1:\$port -brief -ign_eof > /dev/null 2>&1 && break; sleep 0.1; done
  for i in 1 2; do
    { head -n \$((5000 * i)) "\$in"; echo CLOSE; } | timeout 60 openssl s_client -connect 127.0.0.1:\$port -CAfile "\$cert" -verify_return_error -brief -ign_eof > cli.out 2> cli.err
    echo "s_client \$proto exit \$?"; grep -E '^(Protocol version|Verification):' cli.err; md5sum < cli.out
  done
  wait \$spid; echo "s_server exit \$?"
  cat srv.out
  port=\$((port + 1))
done
openssl speed -seconds 1 -bytes 16384 -multi 2 -evp aes-128-gcm > speed.out 2>&1; echo "speed exit \$?"
grep -cE '^Got: \+F:[0-9]+:AES-128-GCM:[0-9.]+ from [01]\$' speed.out
EOS
run_compare openssl o bash "$TMP/work.sh"
echo "$name: ok"
