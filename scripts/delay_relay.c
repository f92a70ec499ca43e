/* A one-way delay for a link where the kernel has no netem: every frame between a network
 * device (by a raw packet socket) and a TAP device (attached to the bridge in its place) is
 * held DELAY_US microseconds, each way, then passed on in order. One thread, waiting in
 * ppoll for a frame or the next one due: a frame costs one wake-up, not a hand-off. Built and run by
 * scripts/links.py:
 *
 *     delay_relay PORT TAP DELAY_US
 *
 * PORT is the bridge's end of a host's veth (taken off the bridge), TAP an existing TAP
 * device on the bridge. Offloads are turned off on PORT by the caller, so frames are at most
 * the MTU. Runs until killed. Prints "ready" once both ends are open.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FRAME 9216 /* the largest frame read: jumbo, offloads off */
#define SLOTS 4096 /* frames held at once, each way (36 MiB) */

struct slot {
  uint64_t due; /* ns, CLOCK_MONOTONIC */
  int len;
  unsigned char data[FRAME];
};

/* One way: frames read from `in`, held, written to `out`, in order. */
struct way {
  int in, out;
  int raw_in; /* `in` is the packet socket: skip the frames we sent ourselves */
  struct slot *ring;
  uint64_t head, tail;
};

static uint64_t delay_ns;

static void die(const char *what) {
  perror(what);
  exit(1);
}

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Reads every frame waiting on `w->in` (non-blocking) into the ring, each due `delay_ns` on. */
static void take(struct way *w) {
  while (w->tail - w->head < SLOTS) {
    struct slot *s = &w->ring[w->tail % SLOTS];
    int n;
    if (w->raw_in) {
      struct sockaddr_ll from;
      socklen_t fl = sizeof from;
      n = recvfrom(w->in, s->data, FRAME, 0, (struct sockaddr *)&from, &fl);
      if (n > 0 && from.sll_pkttype == PACKET_OUTGOING) continue;
    } else {
      n = read(w->in, s->data, FRAME);
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) die("read");
    s->len = n;
    s->due = now_ns() + delay_ns;
    w->tail++;
  }
}

/* Writes every frame that is due; returns ns until the next one is (0: none held). */
static uint64_t give(struct way *w) {
  while (w->head != w->tail) {
    struct slot *s = &w->ring[w->head % SLOTS];
    uint64_t now = now_ns();
    if (s->due > now) return s->due - now;
    if (write(w->out, s->data, s->len) < 0) {
      if (errno == EAGAIN) return 20000; /* the device is full: try again shortly */
      /* A frame the device refuses (too big, no buffer) is dropped, as a switch would. */
      if (errno != ENOBUFS && errno != EMSGSIZE) die("write");
    }
    w->head++;
  }
  return 0;
}

static int open_ends(const char *port, const char *tapname, int *raw, int *tap) {
  *raw = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, htons(ETH_P_ALL));
  if (*raw < 0) die("socket");
  struct sockaddr_ll at = {0};
  at.sll_family = AF_PACKET;
  at.sll_protocol = htons(ETH_P_ALL);
  at.sll_ifindex = if_nametoindex(port);
  if (!at.sll_ifindex) die(port);
  if (bind(*raw, (struct sockaddr *)&at, sizeof at) < 0) die("bind");
  struct packet_mreq promisc = {0};
  promisc.mr_ifindex = at.sll_ifindex;
  promisc.mr_type = PACKET_MR_PROMISC;
  if (setsockopt(*raw, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &promisc, sizeof promisc) < 0)
    die("promisc");
  *tap = open("/dev/net/tun", O_RDWR | O_NONBLOCK);
  if (*tap < 0) die("/dev/net/tun");
  struct ifreq ifr = {0};
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  strncpy(ifr.ifr_name, tapname, IFNAMSIZ - 1);
  if (ioctl(*tap, TUNSETIFF, &ifr) < 0) die("TUNSETIFF");
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: delay_relay PORT TAP DELAY_US\n");
    return 2;
  }
  delay_ns = (uint64_t)atol(argv[3]) * 1000u;
  /* Wake when asked, not up to 50 us later (the default timer slack), and run at once when
   * woken, ahead of MPI ranks that spin on the same cores (netem holds frames in the kernel;
   * a relay in user space needs the CPU on time to match it). It never spins, so a real-time
   * priority takes nothing from the rest; without the right to one, it runs as it is. */
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  struct sched_param fifo = {.sched_priority = 10};
  sched_setscheduler(0, SCHED_FIFO, &fifo);
  int raw, tap;
  open_ends(argv[1], argv[2], &raw, &tap);
  struct way ways[2] = {
      {.in = raw, .out = tap, .raw_in = 1},
      {.in = tap, .out = raw, .raw_in = 0},
  };
  for (int i = 0; i < 2; i++) {
    ways[i].ring = calloc(SLOTS, sizeof(struct slot));
    if (!ways[i].ring) die("calloc");
  }
  printf("ready\n");
  fflush(stdout);
  /* One thread: wait for a frame or the next one due, whichever is first. */
  for (;;) {
    uint64_t wait = 0;
    for (int i = 0; i < 2; i++) {
      uint64_t next = give(&ways[i]);
      if (next && (!wait || next < wait)) wait = next;
    }
    struct pollfd fds[2] = {{.fd = raw, .events = POLLIN}, {.fd = tap, .events = POLLIN}};
    struct timespec t = {(time_t)(wait / 1000000000u), (long)(wait % 1000000000u)};
    if (ppoll(fds, 2, wait ? &t : NULL, NULL) < 0 && errno != EINTR) die("ppoll");
    if (fds[0].revents & POLLIN) take(&ways[0]);
    if (fds[1].revents & POLLIN) take(&ways[1]);
  }
}
