// The known_hosts text keyregd pins for pushd, in OpenSSH's format.

#include <gtest/gtest.h>

#include "Manager.h"

namespace keyregd {
namespace {

const std::string kKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHcvOvN3ZMbPqg0zKXz6gYvXz5xC0mJ0W3pZrN2y8c4L";

TEST(PinnedHostKeys, UseOpenSshHostFormsAndOnlyAcceptedMasters)
{
    std::vector<MasterRecord> masters{
        {"192.0.2.10", 22, 50010, "accepted", "", {kKey}},
        {"2001:db8::1", 22, 50010, "accepted", "", {kKey}},
        {"2001:db8::2", 2222, 50010, "accepted", "", {kKey}},
        {"master.example", 2200, 50010, "accepted", "", {kKey, kKey}},
        {"192.0.2.11", 22, 50010, "declined", "no", {kKey}},
        {"192.0.2.12", 22, 50010, "pending", "", {}},
    };
    EXPECT_EQ(Manager::knownHostsText(masters),
              "192.0.2.10 " + kKey + "\n" + "2001:db8::1 " + kKey + "\n" + "[2001:db8::2]:2222 " + kKey + "\n" +
                  "[master.example]:2200 " + kKey + "\n" + "[master.example]:2200 " + kKey + "\n");
    EXPECT_EQ(Manager::knownHostsText({masters[4], masters[5]}), "");
}

} // namespace
} // namespace keyregd
