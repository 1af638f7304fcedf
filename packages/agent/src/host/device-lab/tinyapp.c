/* tinyapp: the device lab's test service, linked statically into an image with no libc.
 * - sends READY=1 to $NOTIFY_SOCKET (sd_notify protocol, abstract '@' too) unless NO_NOTIFY is set
 * - with LISTEN_FDS >= 1 (socket activation) serves on fd 3, else listens on $PORT (default 8080)
 * - answers "$MSG\n" to each TCP connection and closes it
 * - exits 0 on SIGTERM/SIGINT (podman stop returns at once), exits 1 at once if FAIL is set,
 *   and exits 1 CRASH_AFTER_MS milliseconds after it started (after notifying) if that is set */
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

static void notify(const char *msg) {
  const char *path = getenv("NOTIFY_SOCKET");
  if (!path || !*path) return;
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  size_t n = strlen(path);
  if (n >= sizeof sa.sun_path) return;
  memcpy(sa.sun_path, path, n);
  if (sa.sun_path[0] == '@') sa.sun_path[0] = 0;
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
  if (sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&sa, len) < 0) perror("tinyapp: notify");
  close(fd);
}

static void on_term(int sig) {
  (void)sig;
  _exit(0);
}

static void on_alarm(int sig) {
  (void)sig;
  static const char said[] = "tinyapp: CRASH_AFTER_MS reached, exiting 1\n";
  write(2, said, sizeof said - 1);
  _exit(1);
}

static int listen_on(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((unsigned short)port);
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 16) < 0) return -1;
  return fd;
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  signal(SIGTERM, on_term);
  signal(SIGINT, on_term);
  setvbuf(stdout, NULL, _IONBF, 0);
  const char *msg = getenv("MSG") ? getenv("MSG") : "hello";
  if (getenv("FAIL")) {
    fprintf(stderr, "tinyapp: FAIL set, exiting 1\n");
    return 1;
  }
  int lfd;
  const char *fds = getenv("LISTEN_FDS");
  if (fds && atoi(fds) >= 1) {
    lfd = 3;
    printf("tinyapp: socket-activated, LISTEN_FDS=%s\n", fds);
  } else {
    int port = getenv("PORT") ? atoi(getenv("PORT")) : 8080;
    lfd = listen_on(port);
    if (lfd < 0) {
      perror("tinyapp: bind/listen");
      return 1;
    }
    printf("tinyapp: listening on %d\n", port);
  }
  if (getenv("NO_NOTIFY")) {
    printf("tinyapp: NO_NOTIFY set, not notifying\n");
  } else {
    notify("READY=1");
    printf("tinyapp: sent READY=1\n");
  }
  const char *crash = getenv("CRASH_AFTER_MS");
  if (crash && atol(crash) > 0) {
    long ms = atol(crash);
    struct itimerval timer;
    memset(&timer, 0, sizeof timer);
    timer.it_value.tv_sec = ms / 1000;
    timer.it_value.tv_usec = (ms % 1000) * 1000;
    signal(SIGALRM, on_alarm);
    setitimer(ITIMER_REAL, &timer, NULL);
  }
  for (;;) {
    int c = accept(lfd, NULL, NULL);
    if (c < 0) continue;
    dprintf(c, "%s\n", msg);
    close(c);
    printf("tinyapp: served a connection\n");
  }
}
