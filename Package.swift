// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "bosbackup",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "BOSBackup", targets: ["BOSBackup"]),
        .executable(name: "bosbackup", targets: ["BOSBackupCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite", pkgConfig: "sqlite3",
                       providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        // libdeflate: the same deflate/gzip format as zlib, about twice as fast
        // at level 6 here and 3% smaller (see README, "Performance").
        .systemLibrary(name: "CLibDeflate", path: "Sources/CLibDeflate", pkgConfig: "libdeflate",
                       providers: [.apt(["libdeflate-dev"])]),
        // glibc's mallopt, for the CLI's memory tuning.
        .systemLibrary(name: "CMalloc", path: "Sources/CMalloc"),
        .target(
            name: "BOSBackup",
            dependencies: [
                "CSQLite", "CZlib", "CLibDeflate",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        .executableTarget(
            name: "BOSBackupCLI",
            dependencies: [
                "BOSBackup", "CMalloc",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/bosbackup",
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        .testTarget(
            name: "BOSBackupTests",
            dependencies: ["BOSBackup", "CZlib", .product(name: "AsyncHTTPClient", package: "async-http-client")],
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
    ]
)
