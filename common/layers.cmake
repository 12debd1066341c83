# The layers of libferry-common, lowest first, and the one place that says
# which file belongs where. A file (common/src/<Name>.cpp and/or
# common/include/ferry/<Name>.h) may include headers of its own layer and of
# the layers listed in its layer's DEPENDS; nothing else of ours. Each layer
# is its own static library (ferry-<layer>); ferry-common links them all.
#
# common/cmake/CheckLayers.cmake enforces this at build time and in ctest
# (label "layers"). A new file must be added to a layer here, or the build
# stops and says so.

set(FERRY_LAYERS base config net storage session bus)

# Errors, logging, files, time, where files live: no dependency on anything.
set(FERRY_LAYER_base_DEPENDS)
set(FERRY_LAYER_base_FILES Error Log Files FileLock FileWatch Clock Paths Limits StandardFds)

# Strict YAML and the validated structs read from it; the command line.
set(FERRY_LAYER_config_DEPENDS base)
set(FERRY_LAYER_config_FILES YamlReader NodeConfig PeriodFloorConfig DaemonArgs GeneratorArgs)

# Bytes on a wire: streams with deadlines, the frame codec, HMAC and
# secrets, SSH (the session, and the key files apart from it), and the
# message layouts of the pull and registry protocols.
set(FERRY_LAYER_net_DEPENDS base)
set(FERRY_LAYER_net_FILES Stream Wire Epoch Crypto SshSession SshKeys SshdHostKeys NodeCertificates PullProtocol RegistryProtocol
    Metrics SampleCodec
    TcpServer RelayHeader)

# SQLite files: the node's spool, the master's store, the key registry.
set(FERRY_LAYER_storage_DEPENDS base net)
set(FERRY_LAYER_storage_FILES Sqlite SqlConnection Spool MasterSchema SessionStore EpochPolicy PushPacing MasterQueries
    MasterStore RegistryStore AuthorizedKeysView)

# Protocol sessions that move stored records over a stream.
set(FERRY_LAYER_session_DEPENDS base net storage)
set(FERRY_LAYER_session_FILES Session PullServer PullClient)

# D-Bus: the connection, the event loop, the adaptor-call wrapper, and the
# one helper for work off the loop (async methods, rounds).
set(FERRY_LAYER_bus_DEPENDS base)
set(FERRY_LAYER_bus_FILES Bus BackgroundJobs)

# Third-party headers that only some layers (or files) may include:
# "<include prefix>=<layer or file>,...". Storage and codec code must not
# reach for the bus to tell the time, and libssh stays inside the SSH files.
set(FERRY_LAYER_HEADER_RULES
    "sdbus-c++/=bus"
    "systemd/sd-daemon.h=bus,TcpServer"
    "libssh/=SshSession,SshKeys"
    "sqlite3.h=storage"
    "yaml-cpp/=config"
    "openssl/=Crypto")
