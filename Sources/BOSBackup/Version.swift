public enum BOSBackupVersion { public static let string = "0.1.0" }
