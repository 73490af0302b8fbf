/* A small libcap program for tests/psx/test_psx_cap.c, linked in the ways
 * real programs are (-lcap alone; -lcap before -lpsx): starts four threads,
 * drops CAP_NET_RAW from its effective and permitted sets with
 * cap_set_proc(), and prints how many threads lost it, read from /proc. */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <unistd.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int stop;

static void *idle(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	while (!stop)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	return NULL;
}

/* Does thread `tid' still have `cap' in CapPrm? -1 if it is gone. */
static int has_cap(const char *tid, int cap)
{
	char path[320], line[256];
	snprintf(path, sizeof path, "/proc/self/task/%s/status", tid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	int r = -1;
	while (fgets(line, sizeof line, f))
		if (strncmp(line, "CapPrm:", 7) == 0)
			r = (int)((strtoull(line + 7, NULL, 16) >> cap) & 1);
	fclose(f);
	return r;
}

int main(void)
{
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		if (pthread_create(&th[i], NULL, idle, NULL) != 0)
			return 2;
	cap_t c = cap_get_proc();
	cap_value_t v = CAP_NET_RAW;
	if (!c || cap_set_flag(c, CAP_EFFECTIVE, 1, &v, CAP_CLEAR) != 0 ||
	    cap_set_flag(c, CAP_PERMITTED, 1, &v, CAP_CLEAR) != 0)
		return 2;
	int ret = cap_set_proc(c);
	cap_free(c);
	int threads = 0, dropped = 0;
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	while (d && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		int h = has_cap(e->d_name, CAP_NET_RAW);
		if (h < 0)
			continue;
		threads++;
		dropped += h == 0;
	}
	if (d)
		closedir(d);
	printf("ret=%d\nthreads=%d\ndropped=%d\n", ret, threads, dropped);
	pthread_mutex_lock(&mu);
	stop = 1;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	return 0;
}
