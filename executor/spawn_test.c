/*
 * Unit tests of the vfork-style spawner: a child runs with the given argv, env, stdio and working
 * directory in its own session; every setup failure comes back as a stage and an errno; PATH
 * search distinguishes "not found" from "not executable".
 */
#include "executor/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "executor/testutil.h"

static char *read_all(int fd)
{
    static char buf[4096];
    size_t o = 0;
    ssize_t n;
    while ((n = read(fd, buf + o, sizeof buf - 1 - o)) > 0)
        o += (size_t)n;
    buf[o] = '\0';
    return buf;
}

static void test_runs(void)
{
    int p[2];
    CHECK(pipe2(p, O_CLOEXEC) == 0);
    char *argv[] = {"sh", "-c", "echo \"$GREETING $(pwd) $$ $(cut -d' ' -f6 /proc/$$/stat)\"",
                    NULL};
    char *envp[] = {"GREETING=hello", "PATH=/usr/bin:/bin", NULL};
    exe_spawn_spec spec = {.path = "/bin/sh",
                           .argv = argv,
                           .envp = envp,
                           .workdir = "/tmp",
                           .stdio = {-1, p[1], -1},
                           .new_session = true};
    exe_spawn_result res;
    CHECK(exe_spawn(&spec, &res) == 0);
    close(p[1]);
    char *out = read_all(p[0]);
    close(p[0]);
    int st;
    CHECK(waitpid(res.pid, &st, 0) == res.pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    char expect[128];
    /* pid == sid: the child leads its own session. */
    snprintf(expect, sizeof expect, "hello /tmp %d %d\n", (int)res.pid, (int)res.pid);
    CHECK_STR(out, expect);
}

static void test_signal_defaults(void)
{
    /* An ignored SIGPIPE in the parent must not leak into the child. */
    signal(SIGPIPE, SIG_IGN);
    char *argv[] = {"sh", "-c", "kill -PIPE $$; exit 3", NULL};
    char *envp[] = {NULL};
    exe_spawn_spec spec = {.path = "/bin/sh", .argv = argv, .envp = envp, .stdio = {-1, -1, -1}};
    exe_spawn_result res;
    CHECK(exe_spawn(&spec, &res) == 0);
    int st;
    CHECK(waitpid(res.pid, &st, 0) == res.pid);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGPIPE);
    signal(SIGPIPE, SIG_DFL);
}

static void test_failures_reported(void)
{
    char *argv[] = {"x", NULL};
    char *envp[] = {NULL};
    exe_spawn_spec spec = {
        .path = "/nonexistent/x", .argv = argv, .envp = envp, .stdio = {-1, -1, -1}};
    exe_spawn_result res;
    CHECK(exe_spawn(&spec, &res) == -ENOENT);
    CHECK(res.stage == EXE_SPAWN_FAIL_EXEC && res.err == ENOENT);

    spec.path = "/etc/passwd";
    CHECK(exe_spawn(&spec, &res) == -EACCES);
    CHECK(res.stage == EXE_SPAWN_FAIL_EXEC);

    spec.path = "/bin/true";
    spec.workdir = "/nonexistent-dir";
    CHECK(exe_spawn(&spec, &res) == -ENOENT);
    CHECK(res.stage == EXE_SPAWN_FAIL_CHDIR);
    CHECK_STR(exe_spawn_stage_name(res.stage), "chdir");
}

static void test_path_search(void)
{
    char dir[] = "/tmp/spawn_test.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char f[256], path[512];
    snprintf(f, sizeof f, "%s/noexec", dir);
    int fd = open(f, O_CREAT | O_WRONLY, 0644);
    close(fd);
    char list[600];
    snprintf(list, sizeof list, "/nonexistent:%s:/bin", dir);
    CHECK(exe_path_search("noexec", list, path, sizeof path) == -EACCES);
    CHECK(exe_path_search("sh", list, path, sizeof path) == 0);
    CHECK_STR(path, "/bin/sh");
    CHECK(exe_path_search("definitely-not-here", list, path, sizeof path) == -ENOENT);
    CHECK(exe_path_search("sh", NULL, path, sizeof path) == 0); /* default PATH */
    unlink(f);
    rmdir(dir);
}

int main(void)
{
    test_runs();
    test_signal_defaults();
    test_failures_reported();
    test_path_search();
    return test_done("spawn_test");
}
