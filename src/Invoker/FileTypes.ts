/** File name extensions and media types, both ways: for local files sent (UPLOAD_DIRS) and answers saved (DOWNLOAD_DIR). */
const TYPES: ReadonlyArray<readonly [string, string]> = [
  [".pdf", "application/pdf"], [".png", "image/png"], [".jpg", "image/jpeg"], [".jpeg", "image/jpeg"], [".gif", "image/gif"],
  [".webp", "image/webp"], [".svg", "image/svg+xml"], [".txt", "text/plain"], [".csv", "text/csv"], [".json", "application/json"],
  [".xml", "application/xml"], [".html", "text/html"], [".md", "text/markdown"], [".zip", "application/zip"],
  [".gz", "application/gzip"], [".tar", "application/x-tar"], [".mp3", "audio/mpeg"], [".wav", "audio/wav"], [".mp4", "video/mp4"],
  [".docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"],
  [".xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"], [".bin", "application/octet-stream"]
]

const byExtension = new Map(TYPES)
const byType = new Map<string, string>()
for (const [ext, type] of TYPES) if (!byType.has(type)) byType.set(type, ext)

/** The media type a file name's extension (lower-case, with its dot) says, if known. */
export const mediaTypeOfExtension = (ext: string): string | undefined => byExtension.get(ext)

/** The usual extension (with its dot) of a media type; `.bin` when unknown. */
export const extensionOf = (mediaType: string): string => byType.get(mediaType) ?? ".bin"
