/*
 * rg-testsink - a capturing SMTP/LMTP sink for the integration tests.
 *
 *   rg-testsink -l HOST:PORT -d DIR [-L] [-R REPLY] [-r ADDR=REPLY]...
 *               [-x ADDR=REPLY]... [-s SECONDS] [-X]
 *
 * Each message is written to DIR/msg-PID-N.eml (the exact content, after
 * unstuffing) and DIR/msg-PID-N.env (MAIL FROM, RCPT TO and XFORWARD
 * lines), then renamed into place so a test never sees a partial file.
 *   -L           speak LMTP
 *   -R REPLY     final reply to DATA (default "250 2.0.0 Ok: queued as N")
 *   -r ADDR=RPL  refuse ADDR at RCPT time with RPL
 *   -x ADDR=RPL  LMTP: final reply for ADDR
 *   -s SECONDS   wait before the final reply (a slow next hop)
 *   -X           do not offer XFORWARD
 * One process per connection; it runs until killed.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conffile.h"
#include "log.h"
#include "netio.h"
#include "smtp_server.h"

#define MAX_RULES 32

static const char *dir;
static const char *data_reply;
static int delay_s;
static struct { char addr[256]; char reply[256]; } rcpt_rules[MAX_RULES], final_rules[MAX_RULES];
static int nrcpt_rules, nfinal_rules;
static int counter;

static int add_rule(char *arg, int which)
{
    char *eq = strchr(arg, '=');
    if (!eq || (which ? nfinal_rules : nrcpt_rules) >= MAX_RULES)
        return -1;
    *eq = 0;
    if (which) {
        snprintf(final_rules[nfinal_rules].addr, 256, "%s", arg);
        snprintf(final_rules[nfinal_rules++].reply, 256, "%s", eq + 1);
    } else {
        snprintf(rcpt_rules[nrcpt_rules].addr, 256, "%s", arg);
        snprintf(rcpt_rules[nrcpt_rules++].reply, 256, "%s", eq + 1);
    }
    return 0;
}

static int rcpt_check(void *ctx, const char *addr, struct rg_reply *r)
{
    (void)ctx;
    for (int i = 0; i < nrcpt_rules; i++)
        if (strcasecmp(addr, rcpt_rules[i].addr) == 0) {
            rg_reply_set(r, atoi(rcpt_rules[i].reply), "%s", rcpt_rules[i].reply);
            return -1;
        }
    return 0;
}

static void deliver(void *ctx, struct rg_envelope *env, struct rg_spool *sp,
                    struct rg_reply *per, struct rg_reply *summary)
{
    char tmp[4096], path[4096], buf[65536];
    FILE *fp;
    off_t off = 0;
    ssize_t n;
    int id = ++counter;

    (void)ctx;
    snprintf(tmp, sizeof(tmp), "%s/.tmp-%ld-%d", dir, (long)getpid(), id);
    fp = fopen(tmp, "w");
    if (fp == NULL) {
        rg_reply_set(summary, 451, "451 4.3.0 sink cannot write");
        return;
    }
    while ((n = rg_spool_read(sp, buf, sizeof(buf), off)) > 0) {
        fwrite(buf, 1, (size_t)n, fp);
        off += n;
    }
    fclose(fp);
    snprintf(path, sizeof(path), "%s/msg-%ld-%d.eml", dir, (long)getpid(), id);
    rename(tmp, path);
    fp = fopen(tmp, "w");
    if (fp) {
        fprintf(fp, "MAIL FROM:<%s>%s%s\n", env->sender,
                env->params.body == RG_BODY_8BITMIME ? " BODY=8BITMIME" : "",
                env->params.smtputf8 ? " SMTPUTF8" : "");
        for (size_t i = 0; i < env->nrcpt; i++)
            fprintf(fp, "RCPT TO:<%s>\n", env->rcpts[i]);
        for (int i = 0; i < RG_XF_COUNT; i++)
            if (env->xf.value[i][0])
                fprintf(fp, "XFORWARD %s=%s\n", rg_xf_names[i], env->xf.value[i]);
        fclose(fp);
        snprintf(path, sizeof(path), "%s/msg-%ld-%d.env", dir, (long)getpid(), id);
        rename(tmp, path);
    }
    if (delay_s > 0)
        sleep((unsigned)delay_s);
    if (data_reply)
        rg_reply_set(summary, atoi(data_reply), "%s", data_reply);
    else
        rg_reply_set(summary, 250, "250 2.0.0 Ok: queued as TS%ldN%d", (long)getpid(), id);
    for (size_t i = 0; i < env->nrcpt; i++) {
        per[i] = *summary;
        for (int j = 0; j < nfinal_rules; j++)
            if (strcasecmp(env->rcpts[i], final_rules[j].addr) == 0)
                rg_reply_set(&per[i], atoi(final_rules[j].reply), "%s", final_rules[j].reply);
    }
}

int main(int argc, char **argv)
{
    struct rg_hostport hp;
    const char *listen = NULL;
    int opt, lmtp = 0, xforward = 1, fd;
    char err[256];

    while ((opt = getopt(argc, argv, "l:d:LR:r:x:s:X")) != -1) {
        switch (opt) {
        case 'l': listen = optarg; break;
        case 'd': dir = optarg; break;
        case 'L': lmtp = 1; break;
        case 'R': data_reply = optarg; break;
        case 'r': if (add_rule(optarg, 0) < 0) return 2; break;
        case 'x': if (add_rule(optarg, 1) < 0) return 2; break;
        case 's': delay_s = atoi(optarg); break;
        case 'X': xforward = 0; break;
        default:
            fprintf(stderr, "usage: rg-testsink -l HOST:PORT -d DIR [-L] [-R REPLY] "
                            "[-r ADDR=REPLY] [-x ADDR=REPLY] [-s SEC] [-X]\n");
            return 2;
        }
    }
    if (!listen || !dir || rg_hostport_parse(listen, &hp) < 0) {
        fprintf(stderr, "rg-testsink: -l HOST:PORT and -d DIR are required\n");
        return 2;
    }
    rg_log_open("rg-testsink", RG_LOG_STDERR, 0);
    fd = rg_listen_tcp(&hp, 128, err, sizeof(err));
    if (fd < 0) {
        fprintf(stderr, "rg-testsink: %s\n", err);
        return 1;
    }
    signal(SIGCHLD, SIG_IGN);   /* no zombies */
    signal(SIGPIPE, SIG_IGN);
    for (;;) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
            return 1;
        int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0)
            continue;
        pid_t pid = fork();
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGTERM);   /* die with the sink */
            close(fd);
            struct rg_smtp_server_cfg cfg = {
                .protocol = lmtp ? RG_PROTO_LMTP : RG_PROTO_SMTP,
                .hostname = "testsink.localdomain",
                .max_message_size = (size_t)1 << 31,
                .max_recipients = 100000,
                .timeout_ms = 60000,
                .spool_dir = dir,
                .spool_mem_limit = 1 << 20,
                .offer_xforward = xforward,
                .deliver = deliver,
                .rcpt_check = rcpt_check,
            };
            rg_smtp_serve(c, &cfg);
            _exit(0);
        }
        close(c);
    }
}
