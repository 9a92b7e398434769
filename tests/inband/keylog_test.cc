// The key log refuses files an attacker could have planted or can read:
// symlinks, files owned by another uid, non-regular files, and files with
// group/other permission bits. Nothing is written in any refused case.
#include "core_transport/inband/keylog.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace tcpcrypt::inband {
namespace {

KeyLogEntry TestEntry() {
  KeyLogEntry e;
  e.label = {0x01, 0x02, 0x03};
  e.session_id.fill(0x22);
  e.cipher = Cipher::kAes128Gcm;
  e.a_to_b_uses_kab = true;
  std::vector<uint8_t> mk(kKLen, 0x7e);
  e.mk0.CopyFrom(mk);
  return e;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class KeyLogFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tcpcrypt-keylog-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    (void)!std::system(("rm -rf '" + dir_ + "'").c_str());
  }
  std::string File(const std::string& name) const { return dir_ + "/" + name; }
  void Write(const std::string& path, const std::string& text, mode_t mode) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, mode);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, text.data(), text.size()),
              static_cast<ssize_t>(text.size()));
    ASSERT_EQ(::fchmod(fd, mode), 0);  // whatever the umask
    ::close(fd);
  }
  std::string dir_;
};

TEST_F(KeyLogFileTest, FreshFileIsCreated0600WithOneLine) {
  const std::string path = File("keys");
  ::umask(022);  // a lax umask must not matter
  std::string error;
  ASSERT_TRUE(AppendKeyLogLine(path, TestEntry(), &error)) << error;
  struct stat st {};
  ASSERT_EQ(::lstat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_uid, ::geteuid());
  const std::string text = ReadAll(path);
  EXPECT_EQ(text.rfind("TCPCRYPT_MK0 010203 ", 0), 0u) << text;
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1);
  // An existing safe file is appended to.
  ASSERT_TRUE(AppendKeyLogLine(path, TestEntry(), &error)) << error;
  EXPECT_EQ(ReadAll(path), text + text);
}

TEST_F(KeyLogFileTest, SymlinkIsRefusedAndTargetUnchanged) {
  const std::string target = File("target");
  Write(target, "precious\n", 0600);
  const std::string link = File("keys");
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  std::string error;
  EXPECT_FALSE(AppendKeyLogLine(link, TestEntry(), &error));
  EXPECT_NE(error.find("symbolic link"), std::string::npos) << error;
  EXPECT_NE(error.find(link), std::string::npos) << error;
  EXPECT_EQ(ReadAll(target), "precious\n");

  // A dangling link is not followed to create its target either.
  const std::string dangling = File("dangling");
  ASSERT_EQ(::symlink(File("created-by-link").c_str(), dangling.c_str()), 0);
  EXPECT_FALSE(AppendKeyLogLine(dangling, TestEntry(), &error));
  struct stat st {};
  EXPECT_NE(::stat(File("created-by-link").c_str(), &st), 0);
}

TEST_F(KeyLogFileTest, FileOwnedByAnotherUserIsRefused) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to chown a file away";
  const std::string path = File("keys");
  Write(path, "planted\n", 0600);
  ASSERT_EQ(::chown(path.c_str(), 65534, 65534), 0);  // nobody
  std::string error;
  EXPECT_FALSE(AppendKeyLogLine(path, TestEntry(), &error));
  EXPECT_NE(error.find("owned by uid 65534"), std::string::npos) << error;
  EXPECT_NE(error.find("nothing logged"), std::string::npos) << error;
  EXPECT_EQ(ReadAll(path), "planted\n");
}

TEST_F(KeyLogFileTest, GroupOrOtherPermissionsAreRefused) {
  for (mode_t mode : {0640, 0604, 0620, 0602, 0660}) {
    const std::string path = File("keys-" + std::to_string(mode));
    Write(path, "", mode);
    std::string error;
    EXPECT_FALSE(AppendKeyLogLine(path, TestEntry(), &error)) << mode;
    EXPECT_NE(error.find("chmod 600"), std::string::npos) << error;
    EXPECT_EQ(ReadAll(path), "") << mode;
  }
}

TEST_F(KeyLogFileTest, NonRegularFilesAreRefusedWithoutBlocking) {
  // A FIFO with no reader: the open must neither block nor write.
  const std::string fifo = File("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::string error;
  EXPECT_FALSE(AppendKeyLogLine(fifo, TestEntry(), &error));
  EXPECT_NE(error.find(fifo), std::string::npos) << error;

  // A FIFO with a reader opens, and is then refused as not a regular file.
  const int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(reader, 0);
  EXPECT_FALSE(AppendKeyLogLine(fifo, TestEntry(), &error));
  EXPECT_NE(error.find("not a regular file"), std::string::npos) << error;
  char buf[16];
  EXPECT_LE(::read(reader, buf, sizeof buf), 0);  // nothing was written
  ::close(reader);

  // A directory cannot be opened for writing at all.
  EXPECT_FALSE(AppendKeyLogLine(dir_, TestEntry(), &error));
}

TEST(KeyLogFileIsSafeTest, ChecksTheOpenDescriptor) {
  std::string reason;
  const int null_fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  ASSERT_GE(null_fd, 0);
  EXPECT_FALSE(KeyLogFileIsSafe(null_fd, &reason));
  EXPECT_EQ(reason, "not a regular file");
  ::close(null_fd);
}

}  // namespace
}  // namespace tcpcrypt::inband
