/*
 * smime.h - the encrypted regigate message (doc/message-format.md): the
 * complete original message as the content of a CMS AuthEnvelopedData
 * (RFC 5083, AES-256-GCM) whose content key is wrapped with a
 * per-transaction KEK (KEKRecipientInfo, kekid = the 16-byte transaction
 * id, AES-256 key wrap), packaged as a standard S/MIME message
 * (application/pkcs7-mime; smime-type=authEnveloped-data, base64).
 *
 * Everything streams between spools: memory stays bounded whatever the
 * message size. Encryption uses OpenSSL's CMS streaming; decryption parses
 * the BER itself (OpenSSL's CMS parser loads the whole structure into
 * memory) and uses OpenSSL only for the key unwrap and AES-GCM.
 */
#ifndef RG_SMIME_H
#define RG_SMIME_H

#include <stddef.h>

#include "spool.h"

#define RG_SMIME_KEK_LEN  32
#define RG_SMIME_TXID_LEN 16
/* Longest header section looked at when detecting (the message's or a part's). */
#define RG_SMIME_HEADER_MAX (1024 * 1024)
/* Longest header section of a message to encrypt: the largest
 * max_header_size regigate.conf(5) accepts, since the route has already
 * accepted the header section within its own limit. */
#define RG_SMIME_OUTER_HEADER_MAX (64 * 1024 * 1024)

enum rg_smime_status {
    RG_SMIME_OK = 0,
    RG_SMIME_NOT_OURS,          /* not an encrypted regigate message */
    RG_SMIME_BAD_FORMAT,        /* looks like one, but is malformed or uses
                                   something we do not support */
    RG_SMIME_BAD_KEY_OR_TAMPERED, /* key unwrap or GCM tag check failed */
    RG_SMIME_TRUNCATED,         /* the base64 or the CMS ends too early */
    RG_SMIME_INTERNAL,          /* local failure: spool I/O, OpenSSL, ... */
};
const char *rg_smime_strerror(int st);

/* What the outer message shows. */
struct rg_smime_outer {
    int hide_subject;           /* replace the Subject */
    const char *subject;        /* the replacement (UTF-8); NULL: "Encrypted message" */
};

/*
 * Encrypt the message in `in` (complete, rg_spool_finish()ed) for the
 * transaction txid whose KEK is kek; the whole outer message is appended to
 * `out` (normally empty). Returns RG_SMIME_OK, or an error with a message
 * in err; on error the content of out is garbage: discard it.
 */
int rg_smime_encrypt(struct rg_spool *in, const unsigned char kek[RG_SMIME_KEK_LEN],
                     const unsigned char txid[RG_SMIME_TXID_LEN],
                     const struct rg_smime_outer *outer, struct rg_spool *out,
                     char *err, size_t errlen);

enum rg_smime_kind {
    RG_SMIME_KIND_NONE = 0,     /* no S/MIME at all */
    RG_SMIME_KIND_OTHER,        /* S/MIME (pkcs7-mime, multipart/signed, .p7m)
                                   that is not an encrypted regigate message */
    RG_SMIME_KIND_OURS,         /* an encrypted regigate message */
};

enum rg_smime_placement {
    RG_SMIME_TOPLEVEL = 0,      /* the message is the application/pkcs7-mime */
    RG_SMIME_ATTACHMENT,        /* the .p7m part of a top-level multipart/mixed */
};

struct rg_smime_info {
    enum rg_smime_kind kind;
    enum rg_smime_placement placement;      /* when OURS */
    unsigned char txid[RG_SMIME_TXID_LEN];  /* the kekid, when OURS */
    char txid_hex[2 * RG_SMIME_TXID_LEN + 1];
    size_t b64_offset;          /* where the base64 of the CMS starts */
};

/*
 * Is the message an encrypted regigate message? RG_SMIME_OK when it is
 * (info->kind = OURS, txid set), RG_SMIME_NOT_OURS when it is not
 * (info->kind says whether it is other S/MIME), RG_SMIME_BAD_FORMAT /
 * RG_SMIME_TRUNCATED when a pkcs7-mime part is present but its CMS cannot
 * be read that far, RG_SMIME_INTERNAL on a spool read error. Only the
 * start of the CMS is decoded (up to the content), not the whole message.
 * Ours = a CMS AuthEnvelopedData with a KEKRecipientInfo whose kekid is 16
 * bytes and whose key is wrapped with AES-256 key wrap.
 */
int rg_smime_detect_spool(struct rg_spool *sp, struct rg_smime_info *info);
/* The same for a complete message in memory. */
int rg_smime_detect(const char *msg, size_t len, struct rg_smime_info *info);

/*
 * Decrypt the encrypted regigate message in `in` with kek into `out`
 * (normally empty): the original message, byte for byte. The plaintext is
 * written to out as it is decrypted and authenticated only at the end (GCM):
 * the caller must use out ONLY when the return is RG_SMIME_OK. On any
 * failure out is emptied (rg_spool_reset: whatever it held, and the
 * unauthenticated plaintext, is gone) and err gets a message.
 */
int rg_smime_decrypt(struct rg_spool *in, const unsigned char kek[RG_SMIME_KEK_LEN],
                     struct rg_spool *out, char *err, size_t errlen);
/* The same for a message in memory. */
int rg_smime_decrypt_mem(const char *msg, size_t len, const unsigned char kek[RG_SMIME_KEK_LEN],
                         struct rg_spool *out, char *err, size_t errlen);

#endif
