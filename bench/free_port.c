/*
 * free_port: prints a TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, read
 * back, closed), for bench/run.sh to start executors on. Another process may take it in between;
 * run.sh retries on a failed start.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror("free_port: socket");
        return 1;
    }
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        perror("free_port: bind");
        close(fd);
        return 1;
    }
    printf("%u\n", (unsigned)ntohs(a.sin_port));
    close(fd);
    return 0;
}
