<?xml version="1.0" encoding="UTF-8"?>
<!-- Shows an RSS 2.0 or Atom 1.0 feed opened in a browser as a readable page.
     Feed readers ignore it. Override by putting feed.xsl in the site's templates folder. -->
<xsl:stylesheet version="1.0"
    xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:atom="http://www.w3.org/2005/Atom"
    exclude-result-prefixes="atom">
  <xsl:output method="html" encoding="UTF-8" indent="yes"/>
  <xsl:template match="/">
    <xsl:variable name="title" select="/rss/channel/title | /atom:feed/atom:title"/>
    <html lang="en">
      <head>
        <meta charset="utf-8"/>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <title><xsl:value-of select="$title"/> (feed)</title>
        <style>
          body { font: 17px/1.5 Georgia, serif; max-width: 40em; margin: 2em auto; padding: 0 1em; color: #222; background: #fff; }
          .note { font: 14px/1.4 system-ui, sans-serif; background: #fff8dc; border: 1px solid #e6d9a8; padding: .75em 1em; border-radius: 4px; }
          h1 { font-size: 1.6em; margin-bottom: .2em; }
          h2 { font-size: 1.15em; margin: 1.5em 0 .2em; }
          a { color: #0645ad; }
          .date { font: 13px system-ui, sans-serif; color: #666; }
          @media (prefers-color-scheme: dark) { body { background: #111; color: #ddd; } a { color: #8ab4f8; } .note { background: #2a2615; border-color: #5a4f2a; } }
        </style>
      </head>
      <body>
        <p class="note">This is a web feed. Copy its address into your feed reader to follow
          <strong><xsl:value-of select="$title"/></strong>.</p>
        <h1><xsl:value-of select="$title"/></h1>
        <p><xsl:value-of select="/rss/channel/description | /atom:feed/atom:subtitle"/></p>
        <xsl:for-each select="/rss/channel/item">
          <h2><a href="{link}"><xsl:value-of select="title"/></a></h2>
          <div class="date"><xsl:value-of select="pubDate"/></div>
          <p><xsl:value-of select="description"/></p>
        </xsl:for-each>
        <xsl:for-each select="/atom:feed/atom:entry">
          <h2><a href="{atom:link[@rel='alternate' or not(@rel)]/@href}"><xsl:value-of select="atom:title"/></a></h2>
          <div class="date"><xsl:value-of select="atom:published | atom:updated[not(../atom:published)]"/></div>
          <p><xsl:value-of select="atom:summary"/></p>
        </xsl:for-each>
      </body>
    </html>
  </xsl:template>
</xsl:stylesheet>
