/* The compiled replication peer: benches/e2e/peer_replicator.py's consume-then-produce
 * loop in C against librdkafka (Debian's librdkafka-dev), with the same settings.
 *
 * A consumer assigned to every source partition from offset 0 hands each record to a
 * producer (acks=all, idempotent, linger.ms=5, the source's codec) that writes it to the
 * same partition of the target with its key, value, headers and timestamp: every record
 * is decompressed, decoded, re-encoded and recompressed. It stops once it copied --expect
 * records, flushes, prints one JSON line, then waits for stdin to close so the harness
 * can read its CPU time and peak RSS from /proc first.
 *
 *   cc -O2 -o peer_replicator_c peer_replicator.c -lrdkafka
 *   peer_replicator_c --source HOST:PORT --target HOST:PORT [--topic bench] --expect N --compression lz4
 */
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BATCH 1000 /* records per consume call, as the Python peer's consume(1000, 0.5) */

static long failures;
static char first_failure[512];

static void note_failure(const char *what) {
    if (failures++ == 0)
        snprintf(first_failure, sizeof first_failure, "%s", what);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    (void)opaque;
    if (m->err)
        note_failure(rd_kafka_err2str(m->err));
}

static void set(rd_kafka_conf_t *conf, const char *key, const char *value) {
    char err[512];
    if (rd_kafka_conf_set(conf, key, value, err, sizeof err) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "peer: %s=%s: %s\n", key, value, err);
        exit(2);
    }
}

static rd_kafka_t *client(rd_kafka_type_t type, rd_kafka_conf_t *conf) {
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "peer: %s\n", err);
        exit(2);
    }
    return rk;
}

/* JSON string contents: quotes, backslashes and control characters escaped. */
static void json_text(const char *s) {
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", *s);
        else
            putchar(*s);
    }
}

int main(int argc, char **argv) {
    const char *source = NULL, *target = NULL, *topic = "bench", *codec = NULL;
    long long expect = -1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--source")) source = argv[i + 1];
        else if (!strcmp(argv[i], "--target")) target = argv[i + 1];
        else if (!strcmp(argv[i], "--topic")) topic = argv[i + 1];
        else if (!strcmp(argv[i], "--expect")) expect = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--compression")) codec = argv[i + 1];
        else {
            fprintf(stderr, "peer: unknown flag %s\n", argv[i]);
            return 2;
        }
    }
    if (!source || !target || !codec || expect < 0) {
        fprintf(stderr, "usage: %s --source S --target T [--topic bench] --expect N --compression C\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    rd_kafka_conf_t *cc = rd_kafka_conf_new();
    set(cc, "bootstrap.servers", source);
    set(cc, "group.id", "peer-replicator");
    set(cc, "auto.offset.reset", "earliest");
    set(cc, "enable.partition.eof", "false");
    rd_kafka_t *consumer = client(RD_KAFKA_CONSUMER, cc);
    rd_kafka_poll_set_consumer(consumer);

    rd_kafka_topic_t *t = rd_kafka_topic_new(consumer, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(consumer, 0, t, &md, 20000);
    if (err || md->topic_cnt != 1 || md->topics[0].err) {
        fprintf(stderr, "peer: no metadata for %s: %s\n", topic,
                rd_kafka_err2str(err ? err : md->topic_cnt ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
        return 1;
    }
    int parts = md->topics[0].partition_cnt;
    rd_kafka_topic_partition_list_t *assignment = rd_kafka_topic_partition_list_new(parts);
    for (int i = 0; i < parts; i++)
        rd_kafka_topic_partition_list_add(assignment, topic, md->topics[0].partitions[i].id)->offset = 0;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(t);
    if ((err = rd_kafka_assign(consumer, assignment))) {
        fprintf(stderr, "peer: assign: %s\n", rd_kafka_err2str(err));
        return 1;
    }
    rd_kafka_topic_partition_list_destroy(assignment);
    rd_kafka_queue_t *queue = rd_kafka_queue_get_consumer(consumer);

    rd_kafka_conf_t *pc = rd_kafka_conf_new();
    set(pc, "bootstrap.servers", target);
    set(pc, "acks", "all");
    set(pc, "enable.idempotence", "true");
    set(pc, "compression.type", codec);
    set(pc, "linger.ms", "5");
    rd_kafka_conf_set_dr_msg_cb(pc, on_delivery);
    rd_kafka_t *producer = client(RD_KAFKA_PRODUCER, pc);

    rd_kafka_message_t *batch[BATCH];
    long long copied = 0;
    while (copied < expect && !failures) {
        ssize_t n = rd_kafka_consume_batch_queue(queue, 500, batch, BATCH);
        for (ssize_t i = 0; i < n; i++) {
            rd_kafka_message_t *m = batch[i];
            if (m->err) {
                if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                    note_failure(rd_kafka_message_errstr(m));
                rd_kafka_message_destroy(m);
                continue;
            }
            if (failures) { /* stop at the first failure, dropping the rest of the batch */
                rd_kafka_message_destroy(m);
                continue;
            }
            rd_kafka_headers_t *hdrs = NULL, *copy = NULL;
            if (!rd_kafka_message_headers(m, &hdrs))
                copy = rd_kafka_headers_copy(hdrs); /* the producer owns the copy once accepted */
            rd_kafka_timestamp_type_t tstype;
            int64_t ts = rd_kafka_message_timestamp(m, &tstype);
            for (;;) {
                err = rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(m->partition),
                                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                        RD_KAFKA_V_VALUE(m->payload, m->len), RD_KAFKA_V_KEY(m->key, m->key_len),
                                        RD_KAFKA_V_HEADERS(copy), RD_KAFKA_V_TIMESTAMP(ts < 0 ? 0 : ts),
                                        RD_KAFKA_V_END);
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                    break;
                rd_kafka_poll(producer, 50);
            }
            if (err) {
                if (copy)
                    rd_kafka_headers_destroy(copy);
                note_failure(rd_kafka_err2str(err));
            } else {
                copied++;
            }
            rd_kafka_message_destroy(m);
        }
        if (n < 0)
            note_failure(rd_kafka_err2str(rd_kafka_last_error()));
        rd_kafka_poll(producer, 0);
    }
    rd_kafka_flush(producer, 120000);
    int left = rd_kafka_outq_len(producer);
    printf("{\"copied\": %lld, \"unflushed\": %d, \"failures\": [", copied, left);
    if (failures) {
        putchar('"');
        json_text(first_failure);
        putchar('"');
    }
    printf("], \"failure_count\": %ld}\n", failures);
    fflush(stdout);
    char buf[256];
    while (read(0, buf, sizeof buf) > 0) {
    }
    rd_kafka_queue_destroy(queue);
    rd_kafka_consumer_close(consumer);
    rd_kafka_destroy(consumer);
    rd_kafka_destroy(producer);
    return 0;
}
