/* tools/hotline-mail.c — sends one sealed bundle as a MIME email over SMTP.
 *
 *   hotline-mail --url smtp://HOST:PORT --from ADDR --to ADDR FILE
 *
 * A separate small program so that the `hotline` binary never loads
 * libcurl (every command starts in a millisecond or two); `hotline bundle
 * mail` runs it.  It knows nothing of stations or keys: FILE is already
 * sealed to the peer (docs/bundle.md), so the mail system sees only
 * ciphertext.
 *
 * The mail (docs/bundle.md, "By email"): headers From, To, Subject
 * "hotline bundle", X-Hotline-Bundle: 1; a multipart/mixed body with a
 * short text/plain part for any person who opens it, then the bundle as
 * application/x-hotline-bundle, base64, attachment "hotline.bundle".
 * libcurl builds the MIME structure and does the base64 (curl_mime).
 *
 * SECURITY  Addresses are checked against a plain local@domain alphabet
 * before they reach a header or an SMTP command, so no argument can
 * inject a header or a command.  The URL may name smtps:// (TLS, with
 * libcurl's default certificate checks).
 *
 * DIAGNOSTICS  One line on stderr, "hotline-mail: ...", exit 1; a usage
 * error exits 2.  Exit 0 means the server accepted the mail. */
#include <curl/curl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define ADDR_MAX 254
#define URL_MAX 512
#define BUNDLE_MAX (UINT64_C(1) << 30)   /* mail is no way to move more */
#define SUBJECT "hotline bundle"
#define MIME_TYPE "application/x-hotline-bundle"
#define FILENAME "hotline.bundle"

static void help(void)
{
	printf("usage: hotline-mail --url smtp://HOST:PORT --from ADDR --to ADDR FILE\n\n"
	       "Sends FILE, a sealed hotline bundle, as a MIME email attachment through\n"
	       "the SMTP server at URL (smtp:// or smtps://).  Run by `hotline bundle mail`.\n\n"
	       "Exit status: 0 the server accepted the mail, 1 failure, 2 usage error.\n");
}

/* The same plain-address rule as the configuration (conf/config.c). */
static int addr_ok(const char *a)
{
	static const char extra[] = ".!#$%&'*+/=?^_`{|}~-";
	size_t n = strnlen(a, ADDR_MAX + 1);
	const char *at = memchr(a, '@', n);
	if (n == 0 || n > ADDR_MAX || !at || at == a || at == a + n - 1 ||
	    memchr(at + 1, '@', (size_t)(a + n - at - 1)))
		return 0;
	for (const char *c = a; c < a + n; c++) {
		int alnum = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
			    (*c >= '0' && *c <= '9');
		if (c < at ? !(alnum || strchr(extra, *c))
			   : c > at && !(alnum || *c == '.' || *c == '-'))
			return 0;
	}
	return 1;
}

static int url_ok(const char *u)
{
	size_t n = strnlen(u, URL_MAX + 1);
	if (n > URL_MAX || (strncmp(u, "smtp://", 7) != 0 && strncmp(u, "smtps://", 8) != 0))
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)u[i] <= 0x20 || (unsigned char)u[i] >= 0x7f)
			return 0;
	return 1;
}

static int send_mail(const char *url, const char *from, const char *to, const char *file)
{
	CURL *c = curl_easy_init();
	curl_mime *mime = NULL;
	struct curl_slist *hdrs = NULL, *rcpt = NULL;
	char buf[ADDR_MAX + 16], mail_from[ADDR_MAX + 3];
	int ret = 1;
	if (!c) {
		fprintf(stderr, "hotline-mail: cannot start libcurl\n");
		goto out;
	}
	snprintf(buf, sizeof(buf), "From: <%s>", from);
	hdrs = curl_slist_append(hdrs, buf);
	snprintf(buf, sizeof(buf), "To: <%s>", to);
	hdrs = curl_slist_append(hdrs, buf);
	hdrs = curl_slist_append(hdrs, "Subject: " SUBJECT);
	hdrs = curl_slist_append(hdrs, "X-Hotline-Bundle: 1");
	rcpt = curl_slist_append(rcpt, to);
	snprintf(mail_from, sizeof(mail_from), "<%s>", from);

	mime = curl_mime_init(c);
	curl_mimepart *part = curl_mime_addpart(mime);
	curl_mime_data(part,
		       "This mail carries a sealed hotline bundle for a hotline station.\r\n"
		       "It is encrypted to that station; import it with the station's\r\n"
		       "`hotline bundle import --maildir`.\r\n",
		       CURL_ZERO_TERMINATED);
	curl_mime_type(part, "text/plain; charset=us-ascii");
	part = curl_mime_addpart(mime);
	if (curl_mime_filedata(part, file) != CURLE_OK) {
		fprintf(stderr, "hotline-mail: cannot read '%s'\n", file);
		goto out;
	}
	curl_mime_filename(part, FILENAME);
	curl_mime_type(part, MIME_TYPE);
	curl_mime_encoder(part, "base64");

	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_MAIL_FROM, mail_from);
	curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_MIMEPOST, mime);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 600L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	CURLcode rc = curl_easy_perform(c);
	if (rc != CURLE_OK) {
		fprintf(stderr, "hotline-mail: sending to %s through %s failed: %s\n", to, url,
			curl_easy_strerror(rc));
		goto out;
	}
	ret = 0;
out:
	curl_mime_free(mime);
	curl_slist_free_all(hdrs);
	curl_slist_free_all(rcpt);
	curl_easy_cleanup(c);
	return ret;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "from", required_argument, NULL, 'f' },
		{ "to", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *url = NULL, *from = NULL, *to = NULL;
	struct stat sb;
	int c;
	while ((c = getopt_long(argc, argv, "u:f:t:h", opts, NULL)) != -1) {
		switch (c) {
		case 'u': url = optarg; break;
		case 'f': from = optarg; break;
		case 't': to = optarg; break;
		case 'h': help(); return 0;
		default:
			fprintf(stderr, "hotline-mail: try 'hotline-mail --help'\n");
			return 2;
		}
	}
	if (!url || !from || !to || argc - optind != 1) {
		fprintf(stderr, "hotline-mail: usage: hotline-mail --url URL --from ADDR --to ADDR FILE\n");
		return 2;
	}
	if (!url_ok(url)) {
		fprintf(stderr, "hotline-mail: bad URL (want smtp:// or smtps://, no spaces)\n");
		return 2;
	}
	if (!addr_ok(from) || !addr_ok(to)) {
		fprintf(stderr, "hotline-mail: bad address '%s': want a plain local@domain\n",
			addr_ok(from) ? "--to" : "--from");
		return 2;
	}
	const char *file = argv[optind];
	if (stat(file, &sb) < 0 || !S_ISREG(sb.st_mode) || (uint64_t)sb.st_size > BUNDLE_MAX) {
		fprintf(stderr, "hotline-mail: '%s' is not a readable bundle file under 1 GiB\n", file);
		return 1;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "hotline-mail: cannot initialise libcurl\n");
		return 1;
	}
	int ret = send_mail(url, from, to, file);
	curl_global_cleanup();
	return ret;
}
