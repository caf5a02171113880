/* The ceiling for a protocol benchmark: a TCP server on 127.0.0.1:PORT that answers every line it
 * receives with one canned spalloc reply and does no other work, one thread per connection. It
 * exits by itself after SECONDS (default 60), so a benchmark script cannot leave it behind.
 *
 *   cc -O2 -pthread -o null_server null_server.c && ./null_server PORT [SECONDS]
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char REPLY[] = "{\"return\": {\"state\": 3, \"power\": true, \"keepalive\": null, "
                            "\"reason\": null, \"start_time\": 1.0, \"keepalivehost\": \"\"}}\n";

static void *serve(void *arg) {
    int fd = (int)(long)arg;
    char in[65536];
    char *out = NULL;
    size_t out_cap = 0;
    ssize_t n;
    while ((n = read(fd, in, sizeof in)) > 0) {
        size_t lines = 0;
        for (ssize_t i = 0; i < n; i++) lines += in[i] == '\n';
        size_t len = lines * (sizeof REPLY - 1);
        if (len > out_cap) {
            char *bigger = realloc(out, len);
            if (!bigger) break;
            out = bigger;
            out_cap = len;
        }
        for (size_t i = 0; i < lines; i++) memcpy(out + i * (sizeof REPLY - 1), REPLY, sizeof REPLY - 1);
        size_t sent = 0;
        while (sent < len) {
            ssize_t w = write(fd, out + sent, len - sent);
            if (w <= 0) goto done;
            sent += (size_t)w;
        }
    }
done:
    free(out);
    close(fd);
    return NULL;
}

static void *stop_later(void *arg) {
    sleep((unsigned)(long)arg);
    exit(0);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s PORT [SECONDS]\n", argv[0]);
        return 2;
    }
    long seconds = argc > 2 ? atol(argv[2]) : 60;
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listener, (struct sockaddr *)&address, sizeof address) || listen(listener, 256)) {
        perror("null_server");
        return 1;
    }
    pthread_t timer;
    pthread_create(&timer, NULL, stop_later, (void *)seconds);
    for (;;) {
        int fd = accept(listener, NULL, NULL);
        if (fd < 0) continue;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pthread_t thread;
        if (pthread_create(&thread, NULL, serve, (void *)(long)fd) == 0) pthread_detach(thread);
        else close(fd);
    }
}
